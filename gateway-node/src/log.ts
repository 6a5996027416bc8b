import type { LogLevel } from "./config.js";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

/** JSON lines on stdout, filtered by LOG_LEVEL. Callers pass ids and counts, never tokens or secrets. */
export function createLogger(minimum: LogLevel, write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Logger {
  return (level, msg, fields = {}) => {
    if (ORDER[level] < ORDER[minimum]) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }));
  };
}

export const silentLogger: Logger = () => undefined;

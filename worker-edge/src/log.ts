type Level = "debug" | "info" | "warn" | "error";

/** One JSON line per log entry, so Workers Logs can filter by field. Never pass tokens or secrets here. */
export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export function errorFields(error: unknown): Record<string, unknown> {
  return error instanceof Error ? { error: error.message, name: error.name } : { error: String(error) };
}

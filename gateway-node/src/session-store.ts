import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import type { GatewaySession } from "./gateway/shard.js";
import type { GuildViewSnapshot } from "./guild-view.js";

const StoredSession = z.object({
  sessionId: z.string().min(1),
  seq: z.number().int().min(0),
  resumeGatewayUrl: z.string().min(1),
  view: z.object({
    rooms: z.array(z.object({ channelId: z.string(), name: z.string(), parentId: z.string().nullable(), userLimit: z.number() })),
    members: z.array(z.object({ userId: z.string(), channelId: z.string(), username: z.string().optional(), avatar: z.string().nullable().optional() })),
    syncDue: z.boolean().optional(),
  }),
});

/** A resumable session and the guild as the hub has accepted it up to `seq`. */
export interface StoredSession extends GatewaySession {
  view: GuildViewSnapshot;
}

export interface SessionStore {
  load(): StoredSession | undefined;
  save(session: StoredSession | undefined): void;
}

/** SESSION_FILE: where a restarted process finds the session to RESUME. Written atomically (rename). */
export function fileSessionStore(path: string): SessionStore {
  return {
    load() {
      try {
        const parsed = StoredSession.safeParse(JSON.parse(readFileSync(path, "utf8")));
        return parsed.success ? parsed.data : undefined;
      } catch {
        return undefined;
      }
    },
    save(session) {
      mkdirSync(dirname(path), { recursive: true });
      const temporary = `${path}.${process.pid}.tmp`;
      writeFileSync(temporary, JSON.stringify(session ?? {}), { mode: 0o600 });
      renameSync(temporary, path);
    },
  };
}

export const memorySessionStore = (): SessionStore => {
  let stored: StoredSession | undefined;
  // Copies both ways, as a file would: what was saved never changes with what the caller does to it later.
  return { load: () => stored && structuredClone(stored), save: (session) => void (stored = session && structuredClone(session)) };
};

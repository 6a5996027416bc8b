import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { Snowflake } from "../../protocol/ids.js";
import type { GatewaySession } from "./gateway/shard.js";
import type { GuildViewSnapshot } from "./guild-view.js";

const Session = z.object({ sessionId: z.string().min(1), seq: z.number().int().min(0), resumeGatewayUrl: z.string().min(1) });
const View = z.object({
  rooms: z.array(z.object({ channelId: z.string(), name: z.string(), parentId: z.string().nullable(), userLimit: z.number() })),
  members: z.array(z.object({ userId: z.string(), channelId: z.string(), username: z.string().optional(), avatar: z.string().nullable().optional() })),
  syncDue: z.boolean().optional(),
});
const Guild = z.object({ sessionId: z.string().min(1), seq: z.number().int().min(0), view: View });

/** Today's file: every shard's session and every guild's committed picture. */
const GatewayStateV2 = z.object({
  version: z.literal(2),
  /** This process's name to the hubs' leases: a restart on this host is the same instance. */
  instance: z.string().min(1).max(64).optional(),
  shardCount: z.number().int().min(1),
  shards: z.record(z.string().regex(/^\d+$/), Session),
  guilds: z.record(Snowflake, Guild),
});
/** The single-session file of a one-guild, unsharded gateway: read once, written back in today's format. */
const LegacyState = Session.extend({ view: View });

/** One guild as the hub has accepted it: its picture after every dispatch of `sessionId` up to `seq`. */
export interface StoredGuild {
  sessionId: string;
  seq: number;
  view: GuildViewSnapshot;
}

/** What a restarted process resumes from: each shard's session, and each guild's committed picture. */
export interface StoredGateway {
  version: 2;
  instance?: string;
  shardCount: number;
  shards: Record<string, GatewaySession>;
  guilds: Record<string, StoredGuild>;
}

/** The file as read: today's format, or the legacy single-session one, which names no guild. */
export type LoadedState = { kind: "current"; state: StoredGateway } | { kind: "legacy"; session: GatewaySession; view: GuildViewSnapshot };

export interface SessionStore {
  load(): LoadedState | undefined;
  save(state: StoredGateway | undefined): void;
}

/**
 * The stored state in today's shape. A legacy file came from a gateway that served PRIMARY_GUILD_ID alone on one
 * unsharded session, which is shard 0 of 1.
 */
export function migrateLoaded(loaded: LoadedState | undefined, primaryGuildId: string): StoredGateway | undefined {
  if (!loaded) return undefined;
  if (loaded.kind === "current") return loaded.state;
  const { session, view } = loaded;
  return { version: 2, shardCount: 1, shards: { "0": session }, guilds: { [primaryGuildId]: { sessionId: session.sessionId, seq: session.seq, view } } };
}

export function parseStored(raw: unknown): LoadedState | undefined {
  const current = GatewayStateV2.safeParse(raw);
  if (current.success) return { kind: "current", state: current.data };
  const legacy = LegacyState.safeParse(raw);
  if (!legacy.success) return undefined;
  const { view, ...session } = legacy.data;
  return { kind: "legacy", session, view };
}

/** SESSION_FILE: where a restarted process finds the sessions to RESUME. Written atomically (rename). */
export function fileSessionStore(path: string): SessionStore {
  return {
    load() {
      try {
        return parseStored(JSON.parse(readFileSync(path, "utf8")));
      } catch {
        return undefined;
      }
    },
    save(state) {
      mkdirSync(dirname(path), { recursive: true });
      const temporary = `${path}.${process.pid}.tmp`;
      writeFileSync(temporary, JSON.stringify(state ?? {}), { mode: 0o600 });
      renameSync(temporary, path);
    },
  };
}

export const memorySessionStore = (): SessionStore => {
  let stored: StoredGateway | undefined;
  // Copies both ways, as a file would: what was saved never changes with what the caller does to it later.
  return {
    load: () => (stored ? { kind: "current", state: structuredClone(stored) } : undefined),
    save: (state) => void (stored = state && structuredClone(state)),
  };
};

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import { Snowflake } from "../../protocol/ids.js";
import type { Logger } from "./log.js";

/**
 * SESSION_FILE: what a restarted process needs to RESUME its Discord sessions, and nothing the hub holds.
 *
 * Durability: written atomically (a temporary file, then a rename over the old one), without fsync. A process that
 * crashes loses nothing written (the kernel has it); a machine that loses power may come back with an older file (its
 * positions replay more dispatches: states are idempotent, the hub drops repeated ids) or a damaged one (kept aside,
 * and every shard IDENTIFYs). Neither loses a state, so the fsync's latency buys nothing here.
 */
export const SESSION_FILE_VERSION = 3;

const Session = z.object({ sessionId: z.string().min(1), seq: z.number().int().min(0), resumeGatewayUrl: z.string().min(1) });
const GuildStates = z.enum(["unknown", "available", "unavailable", "absent"]);

const GatewayStateV3 = z.object({
  version: z.literal(3),
  /** This process's name to the hubs' leases: a restart on this host is the same instance. */
  instance: z.string().min(1).max(64),
  shardCount: z.number().int().min(1),
  /** Each shard's resumable position: every dispatch up to `seq` is delivered for each of its guilds. */
  shards: z.record(z.string().regex(/^\d+$/), Session),
  /**
   * `syncOwed`: the hub is owed a whole picture a resumed session would not carry (its shard IDENTIFYs instead);
   * `state`: the guild as Discord last said (a resumed session carries no READY to say it again).
   */
  guilds: z.record(Snowflake, z.object({ syncOwed: z.boolean(), state: GuildStates })),
});
export type StoredGateway = z.infer<typeof GatewayStateV3>;
export type StoredGuild = StoredGateway["guilds"][string];

// --- earlier formats, read once and written back as v3

const View = z.object({ rooms: z.array(z.unknown()), members: z.array(z.unknown()), syncDue: z.boolean().optional() });
/** v2: every shard's session and every guild's committed picture. */
const GatewayStateV2 = z.object({
  version: z.literal(2),
  instance: z.string().min(1).max(64).optional(),
  shardCount: z.number().int().min(1),
  shards: z.record(z.string().regex(/^\d+$/), Session),
  guilds: z.record(Snowflake, z.object({ sessionId: z.string().min(1), seq: z.number().int().min(0), view: View })),
});
/** v1: the single session of a one-guild, unsharded gateway, with its picture. */
const LegacyState = Session.extend({ view: View });

/** Why a file was not used: it cannot be read as any format, or a later release wrote it. */
export class UntrustedSessionFile extends Error {}

/**
 * The stored state in today's shape. What earlier formats kept beyond that (the committed pictures: the hub holds
 * them) is dropped and said so. A v2 guild that had not delivered its shard's stored session, or still owed a
 * picture, is owed one (its shard IDENTIFYs). A v1 file came from a gateway that served PRIMARY_GUILD_ID alone on
 * one unsharded session, which is shard 0 of 1.
 */
export function parseStored(raw: unknown, primaryGuildId: string, newInstance: () => string, log: Logger): StoredGateway {
  const current = GatewayStateV3.safeParse(raw);
  if (current.success) return current.data;
  const v2 = GatewayStateV2.safeParse(raw);
  if (v2.success) {
    const { instance, shardCount, shards, guilds } = v2.data;
    const migrated: StoredGateway = {
      version: 3,
      instance: instance ?? newInstance(),
      shardCount,
      shards,
      guilds: Object.fromEntries(
        Object.entries(guilds).map(([guildId, guild]) => {
          const current = Object.values(shards).some((shard) => shard.sessionId === guild.sessionId);
          return [guildId, { syncOwed: !current || guild.view.syncDue === true, state: "unknown" as const }];
        }),
      ),
    };
    log("info", "session file read in its version 2 format; written back as version 3", {
      kept: "each shard's session, the instance, whether each guild is owed a picture",
      dropped: "each guild's committed picture (the hub holds it)",
    });
    return migrated;
  }
  const legacy = LegacyState.safeParse(raw);
  if (legacy.success) {
    const { view, ...session } = legacy.data;
    log("info", "session file read in its version 1 format (one unsharded session); written back as version 3", {
      kept: "the session, as shard 0 of 1 serving PRIMARY_GUILD_ID",
      dropped: "the committed picture (the hub holds it)",
    });
    return { version: 3, instance: newInstance(), shardCount: 1, shards: { "0": session }, guilds: { [primaryGuildId]: { syncOwed: view.syncDue === true, state: "unknown" } } };
  }
  throw new UntrustedSessionFile("not a session file this release can read");
}

export interface SessionStore {
  /** The raw stored value (undefined: none); a file that cannot be trusted is set aside and undefined returned. */
  load(): unknown;
  save(state: StoredGateway): void;
}

/**
 * SESSION_FILE on disk. A file that cannot be trusted (corrupt, empty, or of a later release) is kept aside as
 * `<file>.bad-<time>` for a look, with one error line, and the process starts without it: every shard IDENTIFYs,
 * which costs one session start each. Refusing to start instead would take the bot offline for something the
 * next write repairs. A write that fails removes its temporary file and throws (the caller reports it).
 */
export function fileSessionStore(path: string, log: Logger): SessionStore {
  return {
    load() {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        log("error", "cannot read the session file; starting without it (every shard IDENTIFYs)", { file: path, error: (error as Error).message });
        return undefined;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        setAside(path, "not JSON (empty, or cut short)", log);
        return undefined;
      }
      const version = typeof raw === "object" && raw !== null && "version" in raw ? (raw as { version: unknown }).version : undefined;
      if (typeof version === "number" && version > SESSION_FILE_VERSION) {
        // A rollback: the later release's fields cannot be trusted to mean what this one reads.
        setAside(path, `written by a later release (version ${version})`, log);
        return undefined;
      }
      return raw;
    },
    save(state) {
      mkdirSync(dirname(path), { recursive: true });
      const temporary = `${path}.${process.pid}.tmp`;
      try {
        writeFileSync(temporary, JSON.stringify(state), { mode: 0o600 });
        renameSync(temporary, path);
      } catch (error) {
        rmSync(temporary, { force: true });
        throw error;
      }
    },
  };
}

/** Reads the store in today's shape, setting aside a file it cannot trust. */
export function loadStored(store: SessionStore, path: string | undefined, primaryGuildId: string, newInstance: () => string, log: Logger): StoredGateway | undefined {
  const raw = store.load();
  if (raw === undefined) return undefined;
  try {
    return parseStored(raw, primaryGuildId, newInstance, log);
  } catch (error) {
    if (!(error instanceof UntrustedSessionFile)) throw error;
    if (path) setAside(path, error.message, log);
    else log("error", "the stored session state cannot be trusted; starting without it", { why: error.message });
    return undefined;
  }
}

function setAside(path: string, why: string, log: Logger): void {
  const keptAs = `${path}.bad-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  try {
    renameSync(path, keptAs);
    log("error", "the session file cannot be trusted: kept aside, starting without it (every shard IDENTIFYs)", { file: path, keptAs, why });
  } catch (error) {
    log("error", "the session file cannot be trusted and cannot be moved aside; starting without it (every shard IDENTIFYs)", { file: path, why, error: (error as Error).message });
  }
}

export const memorySessionStore = (): SessionStore => {
  let stored: string | undefined;
  // Serialised both ways, as a file would: what was saved never changes with what the caller does to it later.
  return {
    load: () => (stored === undefined ? undefined : (JSON.parse(stored) as unknown)),
    save: (state) => void (stored = JSON.stringify(state)),
  };
};

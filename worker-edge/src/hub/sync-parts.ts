import type { GuildSyncPayload } from "../../../protocol/index.js";
import { Retention, type HubStore, type SyncRecord } from "./store.js";

/**
 * What became of one part of a multi-part guild.sync:
 * - `duplicate`: stored already, or its sync already applied or superseded (an acknowledged retry changes nothing);
 * - `stored`: kept until the other parts arrive (for Retention.syncPartAgeMs after the sync's last part);
 * - `complete`: the last part: the whole picture, to apply at once;
 * - `superseded`: the last part of a picture older than one already applied: dropped;
 * - `orphaned`: the parts before it are gone (acknowledged, then kept past retention): the sync can never
 *   complete, so the hub refuses the part and the gateway sends a fresh picture.
 */
export type PartOutcome =
  | { kind: "duplicate" | "stored" | "superseded" | "orphaned" }
  | { kind: "complete"; sync: GuildSyncPayload };

type SyncPart = NonNullable<GuildSyncPayload["part"]>;

/** A sync sent in more than one part (a one-part sync is a whole sync). */
export function isMultiPart(sync: GuildSyncPayload): sync is GuildSyncPayload & { part: SyncPart } {
  return sync.part !== undefined && sync.part.count > 1;
}

/**
 * Takes one part. A part's fate is decided by what is stored and by the ledger of syncs, never by an event-id
 * window: an acknowledged part is kept as long as its sync may still complete, and a sync once applied or
 * superseded stays so for the ledger's 1,000 newest syncs, however late its parts come again.
 */
export function receiveSyncPart(store: HubStore, sync: GuildSyncPayload & { part: SyncPart }, now: number): PartOutcome {
  const { part } = sync;
  let record = store.syncRecord(part.syncId);
  if (record && record.state !== "open") return { kind: "duplicate" };
  if (store.hasSyncPart(part.syncId, part.index)) return { kind: "duplicate" };
  // The gateway sends parts in order: a part after one the hub does not hold follows parts it let go.
  if (part.index > 0 && !store.hasSyncPart(part.syncId, part.index - 1)) return { kind: "orphaned" };
  if (!record) {
    record = { syncId: part.syncId, firstArrival: store.nextSyncArrival(), count: part.count, state: "open" };
    store.openSync(record.syncId, record.count, record.firstArrival, now);
    store.supersedeOpenSyncsBeyond(Retention.openSyncs);
  }
  store.putSyncPart(record, part.index, { channels: sync.channels, voiceStates: sync.voiceStates }, now);
  if (store.syncPartCount(part.syncId) < record.count) return { kind: "stored" };
  return finish(store, record, sync.guildId);
}

function finish(store: HubStore, record: SyncRecord, guildId: string): PartOutcome {
  const parts = store.syncParts(record.syncId);
  if (record.firstArrival < store.syncAppliedFrom) {
    store.finishSync(record.syncId, "superseded");
    return { kind: "superseded" };
  }
  store.finishSync(record.syncId, "applied");
  appliedFrom(store, record.firstArrival);
  return {
    kind: "complete",
    sync: { guildId, channels: parts.flatMap((p) => p.channels), voiceStates: parts.flatMap((p) => p.voiceStates) },
  };
}

/** A whole sync (one part, or sent without parts) is the newest picture: it applies, and supersedes open ones. */
export function receiveWholeSync(store: HubStore): void {
  appliedFrom(store, store.nextSyncArrival());
}

function appliedFrom(store: HubStore, firstArrival: number): void {
  store.syncAppliedFrom = firstArrival;
  store.supersedeSyncsBefore(firstArrival);
}

import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import schema1 from "../fixtures/hub-schema-1-adedeb0.sql?raw";
import schema2 from "../fixtures/hub-schema-2-d07b7ba.sql?raw";
import schema3 from "../fixtures/hub-schema-3-a643564.sql?raw";
import schema4 from "../fixtures/hub-schema-4-c459d24.sql?raw";
import schema5 from "../fixtures/hub-schema-5-e35e344.sql?raw";
import schema6 from "../fixtures/hub-schema-6-35362d3.sql?raw";

/** The fixtures' "now" (2030-01-01): their rows were written around it. */
export const FIXTURE_TIME = 1_893_456_000_000;

/** Each schema the hub shipped, with the rows its code wrote (see the files' headers): five before versions, then v3. */
export const SHIPPED_SCHEMAS = [
  { commit: "adedeb0", sql: schema1, buckets: false, syncPart: false },
  { commit: "d07b7ba", sql: schema2, buckets: false, syncPart: false },
  { commit: "a643564", sql: schema3, buckets: true, syncPart: true },
  { commit: "c459d24", sql: schema4, buckets: true, syncPart: true },
  { commit: "e35e344", sql: schema5, buckets: true, syncPart: true },
  { commit: "35362d3", sql: schema6, buckets: true, syncPart: true },
] as const;

/** The picture every fixture holds: two rooms, two people in the first. */
export const FIXTURE_PICTURE = {
  rooms: { "400000000000900001": "Friday Commander", "400000000000900002": "Draft table" } as Record<string, string>,
  members: { "500000000000900011": "400000000000900001", "500000000000900012": "400000000000900001" } as Record<string, string>,
};

/** A hub object whose storage holds exactly `sql`, as an earlier deploy left it; the next call wakes it anew. */
export async function hubWithStorage(name: string, sql: string) {
  const stub = env.GUILD_HUB.get(env.GUILD_HUB.idFromName(name));
  await runInDurableObject(stub, (_hub, state) => {
    const tables = state.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'sqlite_%'")
      .toArray();
    for (const { name: table } of tables) state.storage.sql.exec(`DROP TABLE "${table}"`);
    state.storage.sql.exec(sql);
  });
  await evictDurableObject(stub);
  return stub;
}

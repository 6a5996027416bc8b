import { afterEach, describe, expect, it } from "vitest";
import { GUILD, ROOM_A, ROOM_B, USERS, startHarness, until, type Harness } from "./support/harness.js";
import { hubPicture } from "./support/hub-model.js";

let h: Harness;
afterEach(() => h?.close());

const CATEGORY = "120000000000000001";
const STAGE = "130000000000000001";

async function ready(): Promise<Harness> {
  h = await startHarness({
    sim: {
      channels: [
        { id: CATEGORY, name: "Pods", type: 4 },
        { id: ROOM_A, name: "Pod A", type: 2, userLimit: 4 },
        { id: ROOM_B, name: "Pod B", type: 2, userLimit: 4 },
        { id: STAGE, name: "Town Hall", type: 13 },
      ],
    },
  });
  await until(() => h.hub.syncs() === 1, "guild.sync");
  return h;
}

describe("rooms renamed or changed in Discord", () => {
  it("announces a new name, user limit or parent as room.updated, and nothing for changes that are not those", async () => {
    await ready();
    h.sim.updateChannel(ROOM_A, { name: "Pod A, renamed" });
    h.sim.updateChannel(ROOM_A, { name: "Pod A, renamed" }); // no change: Discord sends it, the hub hears nothing
    h.sim.updateChannel(ROOM_B, { userLimit: 6 });
    h.sim.updateChannel(ROOM_B, { parentId: CATEGORY });
    h.sim.updateChannel(CATEGORY, { name: "Pods, renamed" }); // a category is not a room
    h.sim.setVoiceState(USERS[0]!, ROOM_A); // arrives last, so everything before it was translated
    await until(() => h.hub.summary().includes(`voice.joined:${USERS[0]}@${ROOM_A}`), "the join after the updates");
    expect(h.hub.summary().slice(3)).toEqual([`room.updated:${ROOM_A}`, `room.updated:${ROOM_B}`, `room.updated:${ROOM_B}`, `voice.joined:${USERS[0]}@${ROOM_A}`]);
    // Every CHANNEL_UPDATE is forwarded whole (the category's too); the hub publishes only what changed a room.
    expect(h.hub.accepted.slice(1, 6).map((e) => e.payload)).toEqual([
      { guildId: GUILD, channelId: ROOM_A, type: 2, name: "Pod A, renamed", parentId: null, userLimit: 4 },
      { guildId: GUILD, channelId: ROOM_A, type: 2, name: "Pod A, renamed", parentId: null, userLimit: 4 },
      { guildId: GUILD, channelId: ROOM_B, type: 2, name: "Pod B", parentId: null, userLimit: 6 },
      { guildId: GUILD, channelId: ROOM_B, type: 2, name: "Pod B", parentId: CATEGORY, userLimit: 6 },
      { guildId: GUILD, channelId: CATEGORY, type: 4, name: "Pods, renamed", parentId: null, userLimit: 0 },
    ]);
  });
});

describe("stage channels", () => {
  it("are not rooms: no room or voice events for them, a move from a room into one is voice.left, and a sync's stages stay out of the rooms", async () => {
    await ready();
    const [u0, u1, u2, u3] = USERS;
    const stage = h.sim.createChannel({ name: "Stage 2", type: 13 });
    h.sim.updateChannel(stage.id, { name: "Stage 2, renamed" });
    h.sim.setVoiceState(u0!, STAGE); // onto a stage: nothing
    h.sim.setVoiceState(u1!, ROOM_A);
    h.sim.setVoiceState(u1!, stage.id); // from a room onto a stage: left the room
    h.sim.setVoiceState(u1!, null); // off the stage: nothing
    h.sim.setVoiceState(u2!, ROOM_B);
    await until(() => h.hub.summary().includes(`voice.joined:${u2}@${ROOM_B}`), "the join that follows the stage traffic");
    // A fresh session: its guild.sync has every channel with its type and everyone in a channel; the hub keeps rooms.
    h.sim.invalidateSession(false);
    await until(() => h.hub.syncs() === 2, "a second guild.sync");
    h.sim.deleteChannel(STAGE); // CHANNEL_DELETE, then u0 disconnected from the stage: nothing
    h.sim.setVoiceState(u3!, ROOM_A);
    await until(() => h.hub.summary().includes(`voice.joined:${u3}@${ROOM_A}`), "the join after the stage was deleted");
    expect(h.hub.summary().slice(3)).toEqual([
      `voice.joined:${u1}@${ROOM_A}`,
      `voice.left:${u1}@${ROOM_A}`,
      `voice.joined:${u2}@${ROOM_B}`,
      "guild.sync:2",
      `voice.joined:${u3}@${ROOM_A}`,
    ]);
    const syncs = h.hub.accepted.filter((e) => e.event === "guild.sync").map((e) => e.payload);
    expect(syncs[1]!.channels.filter((c) => c.type === 2).map((c) => c.channelId)).toEqual([ROOM_A, ROOM_B]);
    expect(syncs[1]!.voiceStates.map(({ userId, channelId }) => ({ userId, channelId }))).toEqual([{ userId: u0, channelId: STAGE }, { userId: u2, channelId: ROOM_B }]);
    expect(hubPicture(h.hub.accepted).rooms.has(STAGE)).toBe(false);
  });
});

import type { GatewayDispatchPayload } from "discord-api-types/v10";
import { describe, expect, it } from "vitest";
import { InternalEvent } from "../../protocol/index.js";
import { translate } from "../src/translate.js";

/** A dispatch as the state it says about one guild: no memory of earlier dispatches. */
const GUILD = "100000000000000001";
const OTHER = "100000000000000002";
const ROOM = "110000000000000001";
const STAGE = "110000000000000002";
const USER = "210000000000000001";
const at = (t: string, d: unknown): GatewayDispatchPayload => ({ op: 0, t, s: 5, d }) as GatewayDispatchPayload;
const member = { user: { id: USER, username: "ann", global_name: "Ann", avatar: "a1" } };

describe("translating a dispatch for one guild", () => {
  it("forwards a voice state with the member's name, avatar and all six flags (self_stream absent: false)", () => {
    const d = { guild_id: GUILD, user_id: USER, channel_id: ROOM, member, self_mute: true, self_deaf: false, mute: false, deaf: true, self_video: true, session_id: "x" };
    const translation = translate(at("VOICE_STATE_UPDATE", d), GUILD);
    expect(translation).toEqual({
      kind: "state",
      event: { event: "voice.state", payload: { guildId: GUILD, userId: USER, channelId: ROOM, username: "Ann", avatar: "a1", media: { selfMute: true, selfDeaf: false, mute: false, deaf: true, selfVideo: true, selfStream: false } } },
    });
    expect(InternalEvent.safeParse((translation as { event: unknown }).event).success).toBe(true);
    expect(translate(at("VOICE_STATE_UPDATE", { ...d, guild_id: OTHER }), GUILD)).toEqual({ kind: "none" });
  });

  it("forwards any channel of the guild with its type; a delete is marked", () => {
    const stage = { id: STAGE, type: 13, guild_id: GUILD, name: "Town Hall", parent_id: null, user_limit: 10_000 };
    expect(translate(at("CHANNEL_UPDATE", stage), GUILD)).toEqual({ kind: "state", event: { event: "channel.state", payload: { guildId: GUILD, channelId: STAGE, type: 13, name: "Town Hall", parentId: null, userLimit: 10_000 } } });
    expect(translate(at("CHANNEL_DELETE", { ...stage, type: 2, user_limit: 4 }), GUILD)).toMatchObject({ event: { payload: { type: 2, deleted: true } } });
    expect(translate(at("CHANNEL_CREATE", { ...stage, guild_id: OTHER }), GUILD)).toEqual({ kind: "none" });
  });

  it("makes an outage a state and a removal a whole picture (the bot's absence)", () => {
    expect(translate(at("GUILD_DELETE", { id: GUILD, unavailable: true }), GUILD)).toEqual({ kind: "state", event: { event: "guild.state", payload: { guildId: GUILD, status: "unavailable" } } });
    expect(translate(at("GUILD_DELETE", { id: GUILD }), GUILD)).toEqual({ kind: "absent" });
    expect(translate(at("GUILD_DELETE", { id: OTHER }), GUILD)).toEqual({ kind: "none" });
  });

  it("makes a GUILD_CREATE the whole picture: every channel with its type, every member in a channel with their flags", () => {
    const guild = {
      id: GUILD,
      channels: [{ id: ROOM, type: 2, name: "Pod", parent_id: null, user_limit: 4 }, { id: STAGE, type: 13, name: "Stage", parent_id: null }],
      voice_states: [{ user_id: USER, channel_id: STAGE, self_stream: true }],
      members: [member],
    };
    const translation = translate(at("GUILD_CREATE", guild), GUILD);
    expect(translation).toEqual({
      kind: "sync",
      sync: {
        guildId: GUILD,
        channels: [{ channelId: ROOM, type: 2, name: "Pod", parentId: null, userLimit: 4 }, { channelId: STAGE, type: 13, name: "Stage", parentId: null, userLimit: 0 }],
        voiceStates: [{ userId: USER, channelId: STAGE, username: "Ann", avatar: "a1", media: { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: true } }],
      },
    });
    expect(InternalEvent.safeParse({ event: "guild.sync", payload: (translation as { sync: unknown }).sync }).success).toBe(true);
  });
});

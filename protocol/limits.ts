// The wire's limits, each defined once: protocol/'s zod schemas, the hub, the gateway, the simulator and the SDK's
// hand-written validators all read them here. Free of zod, so the browser bundle can import it.

// --- a room is a Discord voice channel: Discord's own limits

/** A channel name: 1 to this many characters (UTF-16 code units, as zod and the SDK count them). */
export const MAX_ROOM_NAME_LENGTH = 100;
/** A voice channel's user limit: 0 (no limit) to this. */
export const MAX_ROOM_USER_LIMIT = 99;
/** Channels in one guild; Discord refuses one more (30013). */
export const MAX_GUILD_CHANNELS = 500;

// --- a voice member, as the gateway relays them

export const MAX_USERNAME_LENGTH = 100;
export const MAX_AVATAR_LENGTH = 200;

/**
 * A member's media flags (mute, deafen, camera, stream) are published at most once per this window, with the flags
 * at its end: a microphone toggled ten times in a second costs clients one `voice.media`, or none if it ends as it
 * began. Snapshots always show the flags as they are.
 */
export const MEDIA_COALESCE_MS = 500;

/** A channel's user limit as Discord reports it for any channel type (a stage's reaches 10,000; a voice room's 99). */
export const MAX_CHANNEL_USER_LIMIT = 10_000;

/** A member's `media` when the hub does not say (a hub older than media state): every flag off. */
export const NO_VOICE_MEDIA = { selfMute: false, selfDeaf: false, mute: false, deaf: false, selfVideo: false, selfStream: false } as const;

// --- a guild

/**
 * What the hub knows of its guild: `unavailable` while Discord reports an outage (the rooms may be stale), `absent`
 * once the bot is not in the guild (no rooms). A snapshot or GET /rooms without a status means `available`.
 */
export const GUILD_STATUSES = ["available", "unavailable", "absent"] as const;

// --- client → hub (socket and stream)

// Byte sizes are spelled as literals: esbuild keeps an unused `16 * 1024` in the browser bundle, not an unused 16_384.

/** Largest client → hub message accepted (16 KiB); anything bigger is closed with 1009. */
export const MAX_CLIENT_MESSAGE_BYTES = 16_384;

/** An access token: no identity provider issues larger ones. A JWT is ASCII, so its length is its size in bytes. */
export const MAX_TOKEN_BYTES = 8192;

/** At most this many rooms in a filter: it lives in the socket's hibernation attachment (2 KB budget). */
export const MAX_FILTER_ROOMS = 50;

/** What one guild's hub (or each of its relays) admits; over a limit the socket is closed 4429 (tooMany). */
export const SocketLimits = {
  /** Unauthenticated sockets waiting for their first message, per guild. */
  pendingSockets: 1_000,
  /**
   * Of those, from one client address (`CF-Connecting-IP`; an IPv6 address counts by its /64): one client cannot
   * take the guild's waiting room. A browser's socket waits for one round trip, so 20 covers a crowd behind one NAT
   * connecting together; without the header (tests, some local runs) only the guild's cap applies.
   */
  pendingSocketsPerAddress: 20,
  /** Authenticated sockets of one user, per guild (tabs, devices). */
  socketsPerUser: 10,
  /**
   * First auths of one user (a new socket or stream; each costs a snapshot or a replay of up to the whole buffer):
   * a burst, then one per interval. The burst is twice socketsPerUser, so all of a user's tabs can reconnect at
   * once and again; the SDK paces its own attempts to this budget.
   */
  firstAuthBurst: 20,
  firstAuthIntervalMs: 1_000,
  /** Re-auths on a live socket: a burst, then one per interval. */
  reauthBurst: 3,
  reauthIntervalMs: 10_000,
  /** Room filter changes on a live socket: a burst, then one per interval (each sends a snapshot). */
  roomsBurst: 5,
  roomsIntervalMs: 2_000,
} as const;

// --- REST

/** Largest request body the REST API reads (16 KiB); a larger one is refused with 413. */
export const MAX_REST_BODY_BYTES = 16_384;

/** What one user may ask of a guild's REST API; over a rate the answer is 429 `rate_limited` with Retry-After. */
export const RestLimits = {
  /** GET /rooms (each is a snapshot on the guild's one thread): a burst, then one per interval. */
  roomListBurst: 10,
  roomListIntervalMs: 1_000,
} as const;

// --- gateway → hub (signed internal requests)

/** Largest signed internal request body (1 MiB); a larger one is refused with 413 before its signature is checked. */
export const MAX_INTERNAL_BODY_BYTES = 1_048_576;

/** Events in one internal request. */
export const MAX_EVENTS_PER_REQUEST = 500;

/** An internal event id (`<session>:<seq>[:<index>]`) and a gateway process's instance name, in characters. */
export const MAX_EVENT_ID_LENGTH = 128;
export const MAX_GATEWAY_INSTANCE_LENGTH = 64;

/** Voice states in one guild.sync, all parts together. */
export const MAX_SYNC_VOICE_STATES = 25_000;

/** Largest sync part the gateway sends (256 KiB): several fit in one request under MAX_INTERNAL_BODY_BYTES. */
export const MAX_SYNC_PART_BYTES = 262_144;

/** Parts of one multi-part sync, and the length of the id they share. */
export const MAX_SYNC_PARTS = 64;
export const MAX_SYNC_ID_LENGTH = 64;

// Limits shared by the hub, which enforces them, and the SDK, which paces itself to them. Free of zod, so the
// browser bundle can import it.

/** What one guild's hub admits; over a limit the socket is closed 4429 (tooMany). */
export const SocketLimits = {
  /** Unauthenticated sockets waiting for their first message, per guild. */
  pendingSockets: 1_000,
  /** Authenticated sockets of one user, per guild (tabs, devices). */
  socketsPerUser: 10,
  /** Re-auths on a live socket: a burst, then one per interval. */
  reauthBurst: 3,
  reauthIntervalMs: 10_000,
  /** Room filter changes on a live socket: a burst, then one per interval (each sends a snapshot). */
  roomsBurst: 5,
  roomsIntervalMs: 2_000,
} as const;

/** At most this many rooms in a filter: it lives in the socket's hibernation attachment (2 KB budget). */
export const MAX_FILTER_ROOMS = 50;

/** The largest guild.sync the hub applies: voice channels, and users in them (Discord's biggest guilds fit). */
export const MAX_SYNC_CHANNELS = 500;
export const MAX_SYNC_VOICE_STATES = 25_000;

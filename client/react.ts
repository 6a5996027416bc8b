import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from "react";
import type { EventEnvelope, GuildStatus, Room } from "./types.js";
import { connect, type ConnectionState, type ConnectionStatus, type ConnectOptions, type RealtimeConnection } from "./connect.js";
import { PresenceStore, type PresenceDiff, type PresenceSnapshot } from "./presence.js";

export type RealtimeOptions = Omit<ConnectOptions, "onEvent" | "onStatus">;
export type RealtimeProviderProps = RealtimeOptions & { children?: ReactNode };

/** What the hooks show before the connection exists: during a server render and the first render in the browser. */
const NOT_CONNECTED: ConnectionState = { status: "connecting", attempt: 0 };
const EMPTY = new PresenceStore();
const noop = () => undefined;

/**
 * One connection for these options, opened after mount (so never during a server render) and closed on unmount.
 * A new `url` or `getToken` reconnects (keep getToken stable, e.g. with useCallback); new `rooms` change the
 * filter on the live connection.
 */
function useConnection(options: RealtimeOptions): RealtimeConnection | undefined {
  const [connection, setConnection] = useState<RealtimeConnection>();
  useEffect(() => {
    const live = connect(options);
    setConnection(live);
    return () => live.close();
    // Only what identifies the stream reconnects, not every render's new options object; rooms: below.
  }, [options.url, options.getToken]);
  const roomsKey = options.rooms?.join();
  useEffect(() => connection?.setRooms(options.rooms), [connection, roomsKey]);
  return connection;
}

function useStateOf(connection: RealtimeConnection | undefined): ConnectionState {
  const subscribe = useCallback((onChange: () => void) => (connection ? connection.subscribe(onChange) : noop), [connection]);
  const read = () => connection?.state ?? NOT_CONNECTED;
  return useSyncExternalStore(subscribe, read, () => NOT_CONNECTED);
}

function usePresenceOf(connection: RealtimeConnection | undefined): PresenceSnapshot {
  const store = connection?.presence ?? EMPTY;
  return useSyncExternalStore(store.subscribe, store.getSnapshot, EMPTY.getSnapshot);
}

const RealtimeContext = createContext<{ connection: RealtimeConnection | undefined } | null>(null);

/**
 * Shares one connection with every hook below it. Takes connect()'s options (not onEvent/onStatus: use the hooks,
 * or `useRealtimeConnection()?.on(…)`).
 */
export function RealtimeProvider({ children, ...options }: RealtimeProviderProps): ReactNode {
  const connection = useConnection(options);
  const value = useMemo(() => ({ connection }), [connection]);
  return createElement(RealtimeContext.Provider, { value }, children);
}

/** The provider's connection: undefined until it has mounted (and always during a server render). */
export function useRealtimeConnection(): RealtimeConnection | undefined {
  const context = useContext(RealtimeContext);
  if (!context) throw new Error("Spell Coven realtime hooks need a <RealtimeProvider> above them");
  return context.connection;
}

/** The connection's state ({status, detail?, attempt, retryAt?}); `connecting` before the connection exists. */
export function useConnectionState(): ConnectionState {
  return useStateOf(useRealtimeConnection());
}

/** Every room with its members, sorted by name; [] until the first snapshot. */
export function useRooms(): Room[] {
  return usePresenceOf(useRealtimeConnection()).rooms;
}

/** One room with its members, or undefined while unknown. Re-renders only when this room changes. */
export function useRoom(channelId: string): Room | undefined {
  const store = useRealtimeConnection()?.presence ?? EMPTY;
  const read = () => store.getSnapshot().rooms.find((room) => room.channelId === channelId);
  return useSyncExternalStore(store.subscribe, read, () => undefined);
}

/**
 * The guild's status: "available"; "unavailable" while Discord reports an outage (the rooms may be stale);
 * "absent" when the service's bot is not in the guild. "available" until a hub says otherwise.
 */
export function useGuildStatus(): GuildStatus {
  const store = useRealtimeConnection()?.presence ?? EMPTY;
  return useSyncExternalStore(store.subscribe, () => store.guildStatus, () => EMPTY.guildStatus);
}

/**
 * Calls `listener` with each presence change: who joined, left or moved, which rooms were created or deleted, whose
 * media flags changed.
 */
export function usePresenceChanges(listener: (diff: PresenceDiff) => void): void {
  const store = useRealtimeConnection()?.presence;
  useEffect(() => store?.onChange(listener), [store, listener]);
}

/**
 * @deprecated Use `<RealtimeProvider>` with `useRooms()`, `useConnectionState()` and `useRealtimeConnection()`:
 * one connection shared by every component. This hook opens a connection of its own.
 */
export function useSpellCovenPresence(options: RealtimeOptions): {
  rooms: PresenceSnapshot["rooms"];
  seq: number;
  status: ConnectionStatus;
  lastEvent: EventEnvelope | undefined;
  reconnect: () => void;
} {
  const connection = useConnection(options);
  const [lastEvent, setLastEvent] = useState<EventEnvelope | undefined>();
  useEffect(() => connection?.on("*", (_payload, envelope) => setLastEvent(envelope)), [connection]);
  const snapshot = usePresenceOf(connection);
  return { rooms: snapshot.rooms, seq: snapshot.seq, status: useStateOf(connection).status, lastEvent, reconnect: () => connection?.reconnect() };
}

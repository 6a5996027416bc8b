import { useEffect, useState, useSyncExternalStore } from "react";
import type { EventEnvelope } from "../protocol/index.js";
import { connect, type ConnectOptions, type ConnectionStatus, type RealtimeConnection } from "./connect.js";
import { PresenceStore, type PresenceSnapshot } from "./presence.js";

const idle = new PresenceStore();

/**
 * Live rooms and members for a React component. Connects on mount, closes on unmount; `url`, `rooms` and
 * `getToken` changes reconnect (keep getToken stable with useCallback). After status `unauthorized` (the user
 * signed in again) or `forbidden`, call `reconnect()`.
 */
export function useSpellCovenPresence(options: Omit<ConnectOptions, "onEvent" | "onStatus">): {
  rooms: PresenceSnapshot["rooms"];
  seq: number;
  status: ConnectionStatus;
  lastEvent: EventEnvelope | undefined;
  reconnect: () => void;
} {
  const [connection, setConnection] = useState<RealtimeConnection | undefined>();
  const [status, setStatus] = useState<ConnectionStatus>("offline");
  const [lastEvent, setLastEvent] = useState<EventEnvelope | undefined>();
  const roomsKey = options.rooms?.join(",");

  useEffect(() => {
    const live = connect({ ...options, onStatus: setStatus, onEvent: setLastEvent });
    setConnection(live);
    return () => live.close();
    // Reconnect only when what identifies the stream changes, not on every render's new options object.
  }, [options.url, roomsKey, options.getToken]);

  const store = connection?.presence ?? idle;
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  return { rooms: snapshot.rooms, seq: snapshot.seq, status, lastEvent, reconnect: () => connection?.reconnect() };
}

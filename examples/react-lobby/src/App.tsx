import { useCallback, useMemo, useState, type FormEvent } from "react";
import { mediaOf, type Member, type PresenceDiff, type Room, type VoiceMedia } from "@spell-coven/realtime-client";
import { RealtimeProvider, useConnectionState, useGuildStatus, usePresenceChanges, useRealtimeConnection, useRooms } from "@spell-coven/realtime-client/react";
import { createRealtimeApi, RealtimeApiError } from "@spell-coven/realtime-client/rest";
import type { Session } from "./auth.js";
import { config } from "./config.js";

export function App({ session }: { session: Session }) {
  // One API client for the page; its getToken is the session's, the same one the connection uses.
  const api = useMemo(() => createRealtimeApi({ baseUrl: config.realtimeUrl, getToken: session.getToken }), [session]);
  return (
    <RealtimeProvider url={config.socketUrl} getToken={session.getToken}>
      <header>
        <h1>Spell Coven lobby</h1>
        <ConnectionBadge />
        <button onClick={() => session.signOut()}>Sign out</button>
      </header>
      <CreateRoomForm api={api} />
      <Lobby />
      <JoinToasts />
    </RealtimeProvider>
  );
}

function ConnectionBadge() {
  const { status, detail, retryAt } = useConnectionState();
  const connection = useRealtimeConnection();
  return (
    <p className={`status ${status}`}>
      <span data-testid="status">{status}</span>
      {detail && status !== "live" ? <small> · {detail}</small> : null}
      {retryAt ? <small> · retrying at {new Date(retryAt).toLocaleTimeString()}</small> : null}
      {status === "unauthorized" || status === "failed" ? <button onClick={() => connection?.reconnect()}>Try again</button> : null}
    </p>
  );
}

function Lobby() {
  const { status } = useConnectionState();
  const rooms = useRooms();
  // `live` means the rooms are here: before it, an empty list would claim there are no rooms.
  if (status !== "live" && rooms.length === 0) return <p className="loading">Loading rooms…</p>;
  return (
    <>
      <GuildNotice />
      <ul className="rooms">
        {rooms.map((room) => (
          <RoomCard key={room.channelId} room={room} />
        ))}
      </ul>
    </>
  );
}

/** Says when the picture may be stale (a Discord outage) or there is none (the bot is not in the server). */
function GuildNotice() {
  const guildStatus = useGuildStatus();
  if (guildStatus === "available") return null;
  return (
    <p className="guild-status" role="status" data-testid="guild-status" data-status={guildStatus}>
      {guildStatus === "unavailable" ? "Discord reports an outage: who is where may be out of date." : "The bot is not in this Discord server."}
    </p>
  );
}

function RoomCard({ room }: { room: Room }) {
  return (
    <li data-testid="room" data-channel-id={room.channelId}>
      <span className="room-name">{room.name}</span>
      <span className="capacity">
        {room.members.length}/{room.userLimit || "∞"}
      </span>
      <ul className="members">
        {room.members.map((member) => (
          <MemberItem key={member.userId} member={member} />
        ))}
      </ul>
    </li>
  );
}

/** A member's name with an icon for each of camera, stream, muted and deafened (by themselves or a moderator). */
function MemberItem({ member }: { member: Member }) {
  return (
    <li data-user-id={member.userId}>
      <span className="member-name">{member.username ?? member.userId}</span>
      {mediaBadges(mediaOf(member)).map(([kind, icon, label]) => (
        <span key={kind} className="badge" data-media={kind} role="img" aria-label={label} title={label}>
          {icon}
        </span>
      ))}
    </li>
  );
}

function mediaBadges(media: VoiceMedia): Array<[kind: string, icon: string, label: string]> {
  const badges: Array<[string, string, string] | false> = [
    media.selfVideo && ["camera", "📷", "camera on"],
    media.selfStream && ["stream", "🖥", "streaming"],
    (media.selfMute || media.mute) && ["muted", "🔇", media.mute ? "muted by a moderator" : "muted"],
    (media.selfDeaf || media.deaf) && ["deafened", "🎧", media.deaf ? "deafened by a moderator" : "deafened"],
  ];
  return badges.filter((badge) => badge !== false);
}

function CreateRoomForm({ api }: { api: ReturnType<typeof createRealtimeApi> }) {
  const [name, setName] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      // The new room reaches this page (and every other) through the connection: nothing to add by hand.
      await api.createRoom({ name: name.trim() || "New room" });
      setName("");
    } catch (caught) {
      setError(caught instanceof RealtimeApiError ? `${caught.code}: ${caught.message}` : caught instanceof Error ? caught.message : String(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={(event) => void submit(event)}>
      <input data-testid="create-name" value={name} onChange={(event) => setName(event.target.value)} placeholder="Room name" maxLength={100} />
      <button data-testid="create-submit" disabled={busy}>
        Create room
      </button>
      {error ? (
        <p role="alert" data-testid="create-error">
          {error}
        </p>
      ) : null}
    </form>
  );
}

/** A line per join: the first snapshot is not a join, so nobody already present is announced on load. */
function JoinToasts() {
  const [toasts, setToasts] = useState<string[]>([]);
  const onChange = useCallback((diff: PresenceDiff) => {
    const joined = diff.joined.map(({ member }) => `${member.username ?? member.userId} joined`);
    if (joined.length > 0) setToasts((shown) => [...shown, ...joined].slice(-5));
  }, []);
  usePresenceChanges(onChange);
  return (
    <ul className="toasts" aria-live="polite">
      {toasts.map((toast, index) => (
        <li key={index} data-testid="toast">
          {toast}
        </li>
      ))}
    </ul>
  );
}

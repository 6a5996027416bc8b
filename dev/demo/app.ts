import { connect, mediaOf, tokenExpiry, type ConnectionStatus, type GuildStatus } from "../../client/index.js";
import { createRealtimeApi, RealtimeApiError } from "../../client/rest.js";
import type { EventEnvelope, Member, Room, VoiceMedia } from "../../protocol/index.js";
import { beginSignIn, currentTokens, freshAccessToken, signOut, type Tokens } from "./auth.js";
import type { DemoConfig } from "./server.js";

const config = JSON.parse(document.getElementById("config")!.textContent!) as DemoConfig;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function el(tag: string, attrs: Record<string, string> = {}, ...children: Array<Node | string>): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function showError(message: string | undefined): void {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message ?? "";
}

/** Room names in the order people expect: "Burst 2" before "Burst 10". */
const byName = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const sortRooms = (rooms: Room[]) => [...rooms].sort((a, b) => byName.compare(a.name, b.name) || a.channelId.localeCompare(b.channelId));

function setStatus(status: ConnectionStatus): void {
  const badge = $("status");
  badge.textContent = status;
  badge.className = `status ${status}`;
}

const GUILD_NOTICES: Record<Exclude<GuildStatus, "available">, string> = {
  unavailable: "Discord reports an outage in this server: who is where may be out of date.",
  absent: "The bot is not in this Discord server: there are no rooms to show.",
};

function setGuildStatus(status: GuildStatus): void {
  const notice = $("guild-status");
  notice.hidden = status === "available";
  notice.dataset.status = status;
  notice.textContent = status === "available" ? "" : GUILD_NOTICES[status];
}

/** A member's indicators: camera, stream, muted, deafened (by themselves, or by a moderator). */
function mediaBadges(media: VoiceMedia): HTMLElement[] {
  const badges: Array<[kind: string, text: string, title: string] | false> = [
    media.selfVideo && ["camera", "camera", "camera on"],
    media.selfStream && ["stream", "stream", "streaming"],
    (media.selfMute || media.mute) && ["muted", "muted", media.mute ? "muted by a moderator" : "muted"],
    (media.selfDeaf || media.deaf) && ["deafened", "deafened", media.deaf ? "deafened by a moderator" : "deafened"],
  ];
  return badges.filter((badge) => badge !== false).map(([kind, text, title]) => el("span", { class: `badge ${kind}`, "data-media": kind, title }, text));
}

function memberItem(member: Member): HTMLElement {
  return el("li", { class: "member", "data-user-id": member.userId, "data-testid": "member" }, el("span", { class: "member-name" }, member.username ?? member.userId), ...mediaBadges(mediaOf(member)));
}

async function main(): Promise<void> {
  $("sign-in").addEventListener("click", () => void beginSignIn(config));
  let tokens: Tokens | undefined;
  try {
    tokens = await currentTokens(config);
  } catch (error) {
    $("signed-out").querySelector("p")!.textContent = error instanceof Error ? error.message : String(error);
  }
  if (!tokens) return;

  $("signed-out").hidden = true;
  $("signed-in").hidden = false;
  $("sign-out").hidden = false;
  $("sign-out").addEventListener("click", () => signOut(config, tokens));
  const claims = JSON.parse(atob(tokens.accessToken.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { name?: string; sub: string; roles?: unknown };
  $("user").textContent = claims.name ?? claims.sub;
  const isAdmin = Array.isArray(claims.roles) && claims.roles.includes(config.adminRole);
  // The hub lets a room's creator or an admin end it; the room says who created it.
  const mayEnd = (room: Room) => isAdmin || room.creatorId === claims.sub;

  // An error is about the last action: the next one (a click, a choice, a submit) starts with a clean slate.
  for (const type of ["click", "change", "submit"]) {
    $("signed-in").addEventListener(type, (event) => {
      if (type !== "click" || (event.target as Element).closest("button")) showError(undefined);
    }, { capture: true });
  }

  const getToken = async () => {
    tokens = await freshAccessToken(config, tokens!);
    return tokens.accessToken;
  };
  const api = createRealtimeApi({ baseUrl: config.apiBase, getToken });
  const connection = connect({ url: config.wsUrl, getToken, onStatus: setStatus, onEvent: logEvent });
  connection.presence.subscribe(() => {
    const { rooms, guildStatus } = connection.presence.getSnapshot();
    setGuildStatus(guildStatus);
    renderRooms(rooms);
  });
  renderRooms([]);

  $("create").addEventListener("submit", async (event) => {
    event.preventDefault();
    const nameInput = $<HTMLInputElement>("create-name");
    const name = nameInput.value.trim();
    const userLimit = Number($<HTMLInputElement>("create-limit").value || 0);
    try {
      await api.createRoom({ ...(name ? { name } : {}), userLimit }, { idempotencyKey: crypto.randomUUID() });
      // The room's event often arrives before this response: keep a name typed for the next room meanwhile.
      if (nameInput.value.trim() === name) nameInput.value = "";
      showError(undefined);
    } catch (error) {
      showError(describe(error));
    }
  });

  // voice.left carries no name: remember the names seen, so the log can still say who left.
  const names = new Map<string, string>();

  function renderRooms(unsorted: Room[]): void {
    const rooms = sortRooms(unsorted);
    for (const member of rooms.flatMap((r) => r.members)) if (member.username) names.set(member.userId, member.username);
    const list = $("room-list");
    list.replaceChildren(
      ...rooms.map((room) => {
        const end = mayEnd(room) ? el("button", { class: "ghost", "data-testid": `end-${room.channelId}` }, "End") : undefined;
        end?.addEventListener("click", async () => {
          try {
            await api.endRoom(room.channelId);
            showError(undefined);
          } catch (error) {
            showError(describe(error));
          }
        });
        const members = room.members.length
          ? el("ul", { class: "members" }, ...room.members.map(memberItem))
          : el("p", { class: "empty" }, "Nobody here yet");
        return el(
          "li",
          { class: "room", "data-channel-id": room.channelId, "data-testid": "room" },
          el("div", { class: "room-head" }, el("div", {}, el("span", { class: "room-name" }, room.name), el("span", { class: "room-meta" }, `${room.members.length}${room.userLimit ? ` / ${room.userLimit}` : ""}`)), end ?? ""),
          members,
        );
      }),
    );
    if (rooms.length === 0) list.append(el("li", { class: "empty" }, "No voice rooms yet: create one."));
    renderSimRooms(rooms);
  }

  function logEvent(event: EventEnvelope): void {
    const payload = event.payload as { channelId?: string; userId?: string; username?: string; name?: string; status?: string };
    const who = payload.userId ? `${payload.username ?? names.get(payload.userId) ?? payload.userId} ` : "";
    const room = connection.presence.getSnapshot().rooms.find((r) => r.channelId === payload.channelId)?.name ?? payload.name ?? payload.channelId;
    const line = el("li", { "data-testid": "event" }, el("span", { class: "seq" }, `#${event.seq}`), el("span", { class: "ev" }, event.event), `${who}${room ?? payload.status ?? ""}`);
    $("event-log").prepend(line);
    while ($("event-log").children.length > 100) $("event-log").lastElementChild!.remove();
  }

  await setUpSimulator();
  if (tokenExpiry(tokens.accessToken) === undefined) showError("the access token has no expiry");
}

/** The "simulate Discord" panel drives the simulator's control API, as if players used Discord. */
async function setUpSimulator(): Promise<void> {
  const sim = async (path: string, body?: unknown) => {
    const response = await fetch(`${config.simUrl}/_sim/${path}`, body === undefined ? {} : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (!response.ok) throw new Error(((await response.json()) as { message?: string }).message ?? `simulator answered ${response.status}`);
    return response.json() as Promise<{ users: Array<{ id: string; username: string }>; voiceStates: Array<{ userId: string; channelId: string } & VoiceMedia> }>;
  };
  const state = await sim("state");
  $<HTMLSelectElement>("sim-user").replaceChildren(...state.users.map((u) => el("option", { value: u.id }, u.username)));
  const act = (run: () => Promise<unknown>) => async () => {
    try {
      await run();
      showError(undefined);
    } catch (error) {
      showError(describe(error));
    }
  };
  const user = () => $<HTMLSelectElement>("sim-user").value;
  $("sim-join").addEventListener("click", act(() => sim("voice", { userId: user(), channelId: $<HTMLSelectElement>("sim-room").value })));
  $("sim-leave").addEventListener("click", act(() => sim("voice", { userId: user(), channelId: null })));
  // Each toggle flips one of the player's voice flags in Discord, as the player (or a moderator) would.
  const toggles = { "sim-mute": "selfMute", "sim-deafen": "selfDeaf", "sim-camera": "selfVideo", "sim-stream": "selfStream" } as const;
  for (const [button, flag] of Object.entries(toggles)) {
    $(button).addEventListener("click", act(async () => {
      const current = (await sim("state")).voiceStates.find((v) => v.userId === user());
      if (!current) throw new Error("that player is not in a room");
      await sim("voice", { userId: user(), channelId: current.channelId, [flag]: !current[flag] });
    }));
  }
}

function renderSimRooms(rooms: Room[]): void {
  const select = $<HTMLSelectElement>("sim-room");
  const selected = select.value;
  select.replaceChildren(...sortRooms(rooms).map((room) => el("option", { value: room.channelId }, room.name)));
  if (rooms.some((room) => room.channelId === selected)) select.value = selected;
}

function describe(error: unknown): string {
  if (error instanceof RealtimeApiError) return `${error.message}${error.retryAfterSeconds ? ` (retry in ${error.retryAfterSeconds}s)` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

void main();

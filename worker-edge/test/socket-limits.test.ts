import { describe, expect, it } from "vitest";
import { CloseCode, SocketLimits } from "../../protocol/index.js";
import { authed, edgeFetch, newChannelId, newUserId, postInternal, TestSocket } from "./support/edge.js";
import { roomCreated } from "./support/events.js";
import { mintToken } from "./support/tokens.js";

describe("socket admission limits", () => {
  it("refuses a token that expired within the clock tolerance before any auth.ok or snapshot", async () => {
    const socket = await TestSocket.open();
    socket.send({ type: "auth", token: await mintToken({ expiresIn: -5 }) });
    expect(await socket.waitForClose()).toMatchObject({ code: CloseCode.unauthorized, reason: "token expired" });
    expect(socket.messages).toEqual([]);
    const rest = await edgeFetch("/rooms", authed(await mintToken({ expiresIn: -5 })));
    expect(rest.status).toBe(401);
  });

  it(`closes a user's socket beyond ${SocketLimits.socketsPerUser} with 4429 and keeps the others`, async () => {
    const sub = newUserId();
    const token = await mintToken({ sub });
    const sockets: TestSocket[] = [];
    for (let i = 0; i < SocketLimits.socketsPerUser; i++) {
      const socket = await TestSocket.open();
      await socket.auth(token);
      sockets.push(socket);
    }
    const extra = await TestSocket.open();
    extra.send({ type: "auth", token });
    expect((await extra.waitForClose()).code).toBe(CloseCode.tooMany);
    expect(extra.messages).toEqual([]);

    // A closed socket frees its place; another user is unaffected.
    sockets[0]!.ws.close(1000, "bye");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const replacement = await TestSocket.open();
    await replacement.auth(token);
    const other = await TestSocket.open();
    await other.auth(await mintToken({ sub: newUserId() }));

    await postInternal({ events: [roomCreated(newChannelId())] });
    for (const socket of [...sockets.slice(1), replacement, other]) await socket.waitForEvents(1, "the next event");
  });

  it("closes a socket that re-authenticates faster than the burst allows with 4429", async () => {
    const socket = await TestSocket.open();
    const token = await mintToken({ sub: newUserId() });
    await socket.auth(token);
    for (let i = 0; i < 20; i++) socket.send({ type: "auth", token });
    expect((await socket.waitForClose()).code).toBe(CloseCode.tooMany);
    const acks = socket.messages.filter((m) => m.type === "ack").length;
    expect(acks).toBe(1 + SocketLimits.reauthBurst);
  });

  it(`refuses unauthenticated sockets beyond ${SocketLimits.pendingSockets} with 4429, and still admits a good client`, async () => {
    const good = await TestSocket.open();
    await good.auth(await mintToken({ sub: newUserId() }));
    const waiting = await Promise.all(Array.from({ length: SocketLimits.pendingSockets }, () => TestSocket.open()));
    const refused = await TestSocket.open();
    expect((await refused.waitForClose()).code).toBe(CloseCode.tooMany);
    expect(waiting.filter((socket) => socket.closed).length).toBe(0);
    // Once one of them authenticates, there is room for another.
    await waiting[0]!.auth(await mintToken({ sub: newUserId() }));
    const next = await TestSocket.open();
    await next.auth(await mintToken({ sub: newUserId() }));
    await postInternal({ events: [roomCreated(newChannelId())] });
    await good.waitForEvents(1, "the next event");
    for (const socket of waiting) socket.ws.close(1000);
  }, 30_000);
});

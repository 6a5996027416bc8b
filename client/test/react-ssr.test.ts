import { createElement as h } from "react";
import { renderToString } from "react-dom/server";
import { afterEach, describe, expect, it } from "vitest";
import { RealtimeProvider, useConnectionState, useGuildStatus, useRoom, useRooms } from "../react.js";
import { A, jwt, NodeWebSocket, ScriptedHub, sleep } from "./support/hub.js";

let hub: ScriptedHub | undefined;
afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

function Page() {
  const state = useConnectionState();
  const room = useRoom(A);
  return h("p", null, `${state.status}|${useRooms().length}|${room ? "room" : "no room"}|${useGuildStatus()}`);
}

describe("server rendering", () => {
  it("renders without a window, a connection or a token", async () => {
    expect(typeof (globalThis as { window?: unknown }).window).toBe("undefined");
    hub = await ScriptedHub.start();
    let tokens = 0;
    const html = renderToString(
      h(RealtimeProvider, { url: hub.url, WebSocket: NodeWebSocket, getToken: async () => (tokens++, jwt(600)) }, h(Page)),
    );
    expect(html).toBe("<p>connecting|0|no room|available</p>");
    await sleep(100); // a connection opened by the render would have reached the hub by now
    expect(hub.sockets).toHaveLength(0);
    expect(tokens).toBe(0);
  });

  it("refuses a hook used outside a provider", () => {
    expect(() => renderToString(h(Page))).toThrow("need a <RealtimeProvider>");
  });
});

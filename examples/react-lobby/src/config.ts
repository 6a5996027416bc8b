/** Where the service and the identity provider are: set at build time (`.env`, or the environment of `vite build`). */
const realtimeUrl = import.meta.env.VITE_REALTIME_URL ?? "http://127.0.0.1:8787";

export const config = {
  /** The Worker's origin, for the REST helpers. */
  realtimeUrl,
  /** Its WebSocket: the same origin, ws(s) and /ws. */
  socketUrl: `${realtimeUrl.replace(/^http/, "ws")}/ws`,
  idpUrl: import.meta.env.VITE_IDP_URL ?? "http://127.0.0.1:8788",
  clientId: import.meta.env.VITE_CLIENT_ID ?? "spell-coven-demo",
  /** The token audience the identity provider issues for this service. */
  resource: "urn:spell-coven:realtime",
};

import { createApp } from "./app.js";

export { GuildHub } from "./guild-hub.js";
export { LobbyRelay } from "./lobby-relay.js";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;

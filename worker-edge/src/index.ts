import { createApp } from "./app.js";

export { GuildHub } from "./guild-hub.js";

const app = createApp();

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
} satisfies ExportedHandler<Env>;

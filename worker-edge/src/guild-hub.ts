import { DurableObject } from "cloudflare:workers";
export class GuildHub extends DurableObject<Env> {}

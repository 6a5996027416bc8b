import { hubRequestHeaders, type AppEvent } from "../../protocol/index.js";

/**
 * Feeds app events to a hub the way gateway-node does (signed POST /internal/events), so a test can make the
 * hub broadcast without Discord. Event ids are unique per feed, so nothing is taken for a replay.
 */
export class HubFeed {
  private counter = 0;

  constructor(
    private readonly baseUrl: string,
    private readonly secret: string,
    private readonly guildId: string,
    private readonly label = "hub-feed",
  ) {}

  async post(...events: AppEvent[]): Promise<void> {
    const body = JSON.stringify({ events: events.map((event) => ({ id: `${this.label}:${Date.now()}:${++this.counter}`, ...event })) });
    const response = await fetch(`${this.baseUrl}/internal/events`, { method: "POST", headers: await hubRequestHeaders(this.secret, body), body });
    if (!response.ok) throw new Error(`POST /internal/events answered ${response.status}: ${await response.text()}`);
  }

  roomCreated(channelId: string, name: string): AppEvent {
    return { event: "room.created", payload: { guildId: this.guildId, channelId, name, userLimit: 4 } };
  }

  joined(channelId: string, userId: string): AppEvent {
    return { event: "voice.joined", payload: { guildId: this.guildId, channelId, userId } };
  }

  left(channelId: string, userId: string): AppEvent {
    return { event: "voice.left", payload: { guildId: this.guildId, channelId, userId } };
  }
}

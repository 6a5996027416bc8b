/**
 * The bot token the simulator accepts. Discord resets a token whose owner exhausts the daily IDENTIFY budget;
 * after `revoke()` nothing authenticates with it any more (gateway 4004, REST 401), as in production.
 */
export class BotToken {
  private revoked = false;

  constructor(private readonly value: string) {}

  get isRevoked(): boolean {
    return this.revoked;
  }

  revoke(): void {
    this.revoked = true;
  }

  /** IDENTIFY and RESUME accept the raw token or `Bot <token>`. */
  acceptsGatewayToken(token: unknown): boolean {
    return !this.revoked && typeof token === "string" && token.replace(/^Bot /, "") === this.value;
  }

  /** REST wants exactly `Authorization: Bot <token>`. */
  acceptsAuthorization(header: string | undefined): boolean {
    return !this.revoked && header === `Bot ${this.value}`;
  }
}

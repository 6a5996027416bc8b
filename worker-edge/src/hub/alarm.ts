/**
 * A Durable Object's one alarm, set to the earliest deadline asked for. Read from storage once, then tracked: every
 * connect and auth asks, and a storage read per socket adds up in a storm.
 */
export class AlarmSchedule {
  /** undefined: not read yet (or just fired); null: none set. */
  private at: number | null | undefined;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** The runtime clears the alarm it fires. */
  fired(): void {
    this.at = undefined;
  }

  /** Makes the alarm fire by `at`, never later than one already set (except one at or before `handledBefore`). */
  async atMost(at: number, handledBefore = -Infinity): Promise<void> {
    if (!Number.isFinite(at)) return;
    if (this.at === undefined) {
      const stored = await this.storage.getAlarm();
      this.at ??= stored; // unless a concurrent caller set one meanwhile
    }
    const current = this.at;
    if (current === null || current <= handledBefore || at < current) {
      this.at = at; // before the await, so a concurrent caller compares against it
      await this.storage.setAlarm(at);
    }
  }
}

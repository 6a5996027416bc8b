import { MAX_FILTER_ROOMS } from "../protocol/limits.js";
import { Snowflake } from "./schemas.js";
import { invalid } from "./validate.js";

/**
 * What the hub accepts as a room filter: at most MAX_FILTER_ROOMS snowflakes. The hub closes a socket that sends another (4409),
 * and the filter rides on every reconnect, so it is refused here, where the app can see why.
 */
export function checkRoomFilter(rooms: readonly string[] | undefined): void {
  if (!rooms) return;
  if (rooms.length > MAX_FILTER_ROOMS) throw new RangeError(`a room filter names at most ${MAX_FILTER_ROOMS} rooms, not ${rooms.length}`);
  const bad = rooms.find((id) => Snowflake(id) === invalid);
  if (bad !== undefined) throw new RangeError(`a room filter takes channel ids (snowflakes), not ${JSON.stringify(String(bad).slice(0, 40))}`);
}

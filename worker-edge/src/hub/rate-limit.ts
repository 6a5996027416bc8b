import type { BucketPolicy } from "../../../protocol/index.js";

/** Room creation per user: bursts of 5, then one every 2 s; at most 10 live rooms made by one user. */
export const CreateRoomPolicy = { capacity: 5, refillPerSecond: 0.5, liveRoomsPerUser: 10 } as const satisfies BucketPolicy & { liveRoomsPerUser: number };

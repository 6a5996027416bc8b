/** The simulated guild the local stack starts with: two voice rooms and a few players to move around. */
export const SEED_CHANNELS = [
  { id: "110000000000000001", name: "Commander Pod A", type: 2 as const, userLimit: 4 },
  { id: "110000000000000002", name: "Draft Table", type: 2 as const, userLimit: 8 },
  { id: "110000000000000003", name: "general", type: 0 as const },
];

export const DEMO_USERS = [
  { id: "210000000000000001", username: "Mira", avatar: null },
  { id: "210000000000000002", username: "Tamsin", avatar: null },
  { id: "210000000000000003", username: "Oskar", avatar: null },
  { id: "210000000000000004", username: "Lin", avatar: null },
];

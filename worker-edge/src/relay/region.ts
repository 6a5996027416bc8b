import type { LocationHint } from "../config.js";

/** The region name of relays when RELAY_REGIONS is empty: one region, created wherever its first client is. */
export const ANY_REGION = "any";

/** Where a client is, as Cloudflare reports it on the request (`request.cf`); both fields may be missing. */
export interface ClientPlace {
  continent?: string;
  /** Degrees east, as a string (Cloudflare's format). */
  longitude?: string;
}

/** For each continent, the location hints nearest first (North America and Europe split by longitude below). */
const NEAREST: Record<string, LocationHint[]> = {
  NA: ["enam", "wnam", "sam", "weur"],
  SA: ["sam", "enam", "wnam", "weur"],
  EU: ["weur", "eeur", "me", "enam"],
  AF: ["afr", "weur", "me", "eeur"],
  AS: ["apac", "me", "eeur", "oc"],
  OC: ["oc", "apac", "wnam"],
  AN: ["oc", "sam", "afr"],
};

/**
 * The relay region for a client: the configured region nearest to it, or the first configured one when none is
 * near (or its place is unknown). A client's region is stable, so its reconnects find the same relays.
 */
export function relayRegion(place: ClientPlace | undefined, regions: readonly LocationHint[]): string {
  if (regions.length === 0) return ANY_REGION;
  for (const hint of nearest(place)) if (regions.includes(hint)) return hint;
  return regions[0]!;
}

function nearest(place: ClientPlace | undefined): LocationHint[] {
  const continent = place?.continent ?? "";
  const longitude = Number(place?.longitude);
  const list = NEAREST[continent] ?? [];
  if (continent === "NA" && longitude < -100) return ["wnam", "enam", "sam", "apac"];
  if (continent === "EU" && longitude > 20) return ["eeur", "weur", "me", "apac"];
  return list;
}

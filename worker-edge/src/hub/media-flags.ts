import type { VoiceMedia } from "../../../protocol/index.js";

/** A member's six media flags as one integer, a bit each: how the members table stores them. */
const FLAGS = ["selfMute", "selfDeaf", "mute", "deaf", "selfVideo", "selfStream"] as const satisfies ReadonlyArray<keyof VoiceMedia>;

export function mediaBits(media: VoiceMedia): number {
  return FLAGS.reduce((bits, flag, i) => (media[flag] ? bits | (1 << i) : bits), 0);
}

export function mediaOf(bits: number): VoiceMedia {
  return Object.fromEntries(FLAGS.map((flag, i) => [flag, (bits & (1 << i)) !== 0])) as VoiceMedia;
}

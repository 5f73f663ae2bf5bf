// Task durations of the simulator. `fast` keeps tests quick; `realistic` follows the ranges in
// spec/integrations.md §1 (no vendor benchmark exists, so every value can be overridden).

export type SimTaskType = 'qmsnapshot' | 'qmrollback' | 'qmdelsnapshot' | 'qmstop' | 'qmstart';
export type SimDurations = Record<SimTaskType, number>;
export type SimProfile = 'fast' | 'realistic';

export const simProfiles: Record<SimProfile, SimDurations> = {
  fast: { qmsnapshot: 30, qmrollback: 50, qmdelsnapshot: 20, qmstop: 20, qmstart: 30 },
  realistic: { qmsnapshot: 3000, qmrollback: 5000, qmdelsnapshot: 2000, qmstop: 2000, qmstart: 3000 },
};

export function resolveDurations(profile: SimProfile = 'fast', overrides: Partial<SimDurations> = {}): SimDurations {
  return { ...simProfiles[profile], ...overrides };
}

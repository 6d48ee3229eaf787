// A visit's verdict in words, from the evidence the server stored with it (pure: the unit tests run
// it under node). It follows the server's verdict rule (crates/fieldvisit-domain/src/visit.rs,
// `verdict_of`): suspect names the spoofing signals and the photos against the visit; unverified
// the gap the visit was inferred across, the poor accuracy, or that no position backs it; short the
// stay against the outlet's minimum; verified the fixes, the stay, the nearest distance and the
// accuracy. `t` is the page's translation function (zh/en), so the sentence is in the rep's language.
import { fill } from './logic.js';

/** The spoofing signals (evidence.signals) in the order they are named. */
export const SIGNALS = ['mock_fixes', 'speed_jumps', 'teleport', 'constant_position', 'constant_accuracy', 'clock_ahead_fixes'];
/** What photos can say against a visit (evidence.photos). */
export const PHOTO_SIGNALS = ['far', 'off_time', 'reused'];

const metres = (m, unit) => (m == null ? '–' : `${Math.round(m)} ${unit}`);
const mins = (s) => Math.round((s ?? 0) / 60);

/** The signals seen in a visit's evidence, each `{ key, count }` (count null for a yes/no signal). */
export function signalsOf(evidence = {}) {
  const out = [];
  for (const k of SIGNALS) {
    const v = evidence.signals?.[k];
    if (v === true) out.push({ key: `sig_${k}`, count: null });
    else if (typeof v === 'number' && v > 0) out.push({ key: `sig_${k}`, count: v });
  }
  for (const k of PHOTO_SIGNALS) {
    const v = evidence.photos?.[k];
    if (typeof v === 'number' && v > 0) out.push({ key: `sig_photo_${k}`, count: v });
  }
  return out;
}

/**
 * The sentence for `visit` (an item of GET /reps/{id}/visits): its verdict and why, e.g.
 * "verified: 14 fixes over 18 min, nearest 12 m, accuracy 8 m" or "short: 3 min, the outlet asks
 * 5 min". `minDwellS` is the outlet's minimum stay when the app knows it (its tier's policy).
 */
export function visitReason(visit, { t, minDwellS = null } = {}) {
  const ev = visit.evidence ?? {};
  const m = t('m');
  const sep = t('list_sep');
  const photosConfirm = (ev.photos?.confirming ?? 0) > 0;
  const vars = {
    fixes: ev.fix_count ?? visit.ping_count ?? 0,
    min: mins(visit.dwell_s),
    nearest: metres(visit.min_distance_m ?? ev.min_distance_m, m),
    accuracy: metres(visit.median_accuracy_m ?? ev.median_accuracy_m, m),
    need: minDwellS == null ? null : mins(minDwellS),
  };
  let why;
  switch (visit.verdict) {
    case 'suspect': {
      const named = signalsOf(ev).map((s) => (s.count == null ? t(s.key) : `${t(s.key)} (${s.count})`));
      why = named.length ? named.join(sep) : t('why_risk');
      break;
    }
    case 'unverified': {
      const gaps = ev.bridged_gaps_s ?? [];
      if (!vars.fixes) why = t('why_no_fixes');
      else if (gaps.length) why = fill(t('why_gap'), { min: mins(Math.max(...gaps)) });
      else why = fill(t('why_accuracy'), vars);
      break;
    }
    case 'short':
      why = fill(t(vars.need == null ? 'why_short' : 'why_short_need'), vars);
      break;
    case 'verified':
      why = fill(t('why_verified'), vars);
      if (photosConfirm) why += `${sep}${t('why_photo_confirms')}`;
      break;
    default:
      return String(visit.verdict ?? '');
  }
  return `${t(`verdict_${visit.verdict}`)}${t('colon')}${why}`;
}

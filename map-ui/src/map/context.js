// What the views of the managers' map share: the API client, the signed-in caller, the map, the
// replay, and `state` (window.fieldvisit: what the views last drew, read by the end-to-end test).
import { createApi } from '../common/api.js';
import { $ } from '../common/dom.js';

/** The API with the token of this browser session. */
export const api = createApi();

/** `map` the MapLibre map (once signed in), `me` the caller (`/me`). */
export const ctx = { map: null, me: null };

export const state = { loaded: false, data: {} };

/** The rep's day being replayed: its fixes in time order and the play timer. */
export const replay = { frames: [], timer: null };

/** Reps see their own day and figures; the team views (outlets, coverage, territories) are for the others. */
export const isRep = () => ctx.me?.user?.role === 'rep';

/** The query parameters of the chosen period. */
export function period() { return `from=${$('from').value}&to=${$('to').value}`; }

/** Sets a source's data and keeps it where tests and the panel can read it. */
export function setData(source, fc) {
  state.data[source] = fc;
  ctx.map.getSource(source).setData(fc);
}

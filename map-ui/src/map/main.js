// The managers' map: sign-in with a token, outlets by period status, H3 coverage, live positions
// and the replay of a rep's day, in English and Chinese, with no request leaving the server.
// This entry signs in and wires the panel; each view or layer is its own module beside it.
import { $ } from '../common/dom.js';
import { initLanguage, languageSwitch, register, t } from '../common/i18n.js';
import { emptyCollection } from '../common/geo.js';
import { baseStyle, createMap, fitTo } from '../common/map.js';
import { isoDay } from '../common/format.js';
import { esc } from '../common/text.js';
import { api, ctx, isRep, setData, state } from './context.js';
import { MAP_STRINGS } from './strings.js';
import { addLayers, refresh } from './layers.js';
import { renderLegend } from './legend.js';
import * as territories from './territories.js';
import * as live from './live.js';
import { loadDay, showFrame, togglePlay, translatePlayer } from './day.js';
import { renderPlan } from './plan.js';
import { review, showEvidence } from './evidence.js';
import { downloadCsv, loadSummary, renderSummary } from './summary.js';
import { startViews, translateViews as translateWorkbench } from './views.js';
import './views/index.js';

register(MAP_STRINGS);
initLanguage();
window.fieldvisit = state;

/** What the map draws itself, redrawn in a new language. */
function translateViews() {
  $('slider').setAttribute('aria-label', t('time'));
  renderLegend();
  territories.translatePicker();
  if (state.summary) renderSummary(state.summary);
  if (state.plan) renderPlan();
  if (state.evidenceVisit && !$('evidence-panel').hidden) showEvidence(state.evidenceVisit.id);
  translatePlayer();
  translateWorkbench();
}
const applyLanguage = languageSwitch($('lang'), { onChange: translateViews });

async function start() {
  try {
    ctx.me = await api.request('/me');
  } catch (e) {
    if (e.status === 401) api.signOut();
    $('signin-error').textContent = e.status === 401 ? t('bad_token') : t('server_unreachable');
    return;
  }
  const me = ctx.me;
  if (me.kind === 'device') {
    // A phone's credential only posts fixes and reads its plan: the map needs a person's token.
    $('signin-error').textContent = t('device_token');
    return;
  }
  $('signin').hidden = true;
  $('app').hidden = false;
  document.querySelectorAll('.team-only').forEach((el) => { el.hidden = isRep(); });
  $('signout').hidden = false;
  startViews();
  $('who').textContent = `${me.user?.name ?? t('device')} · ${me.org.name}`;
  const today = new Date();
  $('to').value = isoDay(today);
  $('from').value = isoDay(new Date(today.getTime() - 27 * 86400000));
  // The day view opens on the last day anyone (a rep: they) visited, else yesterday.
  $('day').value = me.last_visit_day ?? isoDay(new Date(today.getTime() - 86400000));
  const team = !isRep();
  const [territoryList, users, territoryLayer] = await Promise.all([
    team ? api.all('/territories').catch(() => []) : [],
    team ? api.all('/users').catch(() => []) : [me.user],
    team ? territories.loadOutlines() : emptyCollection(),
  ]);
  territories.renderPicker(territoryList);
  $('rep').innerHTML = users.filter((u) => u.role === 'rep').map((u) => `<option value="${u.id}">${esc(u.name)}</option>`).join('');
  const map = createMap({ container: 'map', style: await baseStyle(), center: [116.4, 39.9], zoom: 9 });
  ctx.map = map;
  window.fieldvisitMap = map;
  map.on('load', async () => {
    addLayers(map);
    setData('territories', territoryLayer);
    fitTo(map, territoryLayer, 20);
    map.on('moveend', () => refresh({ summary: false }));
    await refresh();
    if ($('show-live').checked) live.follow();
    if (isRep()) loadDay();
  });
}

$('signin').addEventListener('submit', (e) => {
  e.preventDefault();
  api.signIn($('token').value.trim());
  start();
});
$('signout').addEventListener('click', () => { api.signOut(); location.reload(); });
for (const id of ['from', 'to', 'h3-res', 'show-outlets', 'show-coverage']) $(id).addEventListener('change', refresh);
$('territory').addEventListener('change', async () => {
  await territories.showPicked(ctx.map);
  loadSummary().catch((e) => console.warn(e.message));
});
$('show-live').addEventListener('change', live.toggle);
$('load-day').addEventListener('click', loadDay);
$('slider').addEventListener('input', () => showFrame(Number($('slider').value)));
$('play').addEventListener('click', togglePlay);
$('accept').addEventListener('click', () => review('accepted'));
$('reject').addEventListener('click', () => review('rejected'));
$('csv').addEventListener('click', downloadCsv);
applyLanguage();
if (api.token) start();

// The managers' workbench: the map and the views where managers and supervisors act (plans,
// outlets, people, reviews, reports, settings), one module per view under views/, reached from the
// header's navigation by the address's hash (`#plans`), so a view can be bookmarked and the back
// button works. A view is mounted the first time it is shown, and only for the roles it names.
import { $ } from '../common/dom.js';
import { t } from '../common/i18n.js';
import { ctx } from './context.js';

/** The views in navigation order; `map` is the page's own map (main#app). */
const registry = [];

/**
 * Adds a view: `{id, label (string key), roles (who sees it; all when absent), mount(el, ctx),
 * show?(el, ctx), translate?(el)}`. `mount` draws into its own `<section>` once; `show` runs
 * every time the view is opened (to reload what may have changed).
 */
export function registerView(view) {
  registry.push({ ...view, el: null, mounted: false });
}

/** The views `role` may open, in navigation order. */
export function viewsFor(role, views = registry) {
  return views.filter((v) => !v.roles || v.roles.includes(role));
}

/** The view id a hash names (`#plans` → `plans`), `map` for none or an unknown one. */
export function viewOfHash(hash, ids) {
  const id = String(hash || '').replace(/^#\/?/, '').split(/[?/]/)[0];
  return ids.includes(id) ? id : 'map';
}

/** The view shown now. */
export const current = { id: 'map' };

function role() { return ctx.me?.user?.role ?? null; }

/** Draws the navigation for the signed-in caller and shows the view of the address. */
export function startViews() {
  const nav = $('views');
  const mine = viewsFor(role());
  nav.hidden = false;
  nav.innerHTML = ['map', ...mine.map((v) => v.id)]
    .map((id) => `<a href="#${id}" data-view="${id}" data-testid="nav-${id}">${t(labelOf(id))}</a>`)
    .join('');
  window.addEventListener('hashchange', route);
  route();
}

function labelOf(id) {
  return id === 'map' ? 'view_map' : registry.find((v) => v.id === id)?.label ?? id;
}

/** Shows the view the address names; mounts it the first time. */
export async function route() {
  const mine = viewsFor(role());
  const id = viewOfHash(location.hash, mine.map((v) => v.id));
  current.id = id;
  $('app').hidden = id !== 'map';
  $('views-host').hidden = id === 'map';
  for (const a of $('views').querySelectorAll('a')) a.setAttribute('aria-current', a.dataset.view === id ? 'page' : 'false');
  for (const v of registry) if (v.el) v.el.hidden = v.id !== id;
  if (id === 'map') {
    ctx.map?.resize();
    return;
  }
  const view = mine.find((v) => v.id === id);
  if (!view.el) {
    view.el = document.createElement('section');
    view.el.className = 'view';
    view.el.id = `view-${id}`;
    view.el.dataset.testid = `view-${id}`;
    $('views-host').append(view.el);
  }
  view.el.hidden = false;
  try {
    if (!view.mounted) {
      view.mounted = true;
      await view.mount(view.el, ctx);
    }
    await view.show?.(view.el, ctx);
  } catch (e) {
    console.warn(`view ${id}:`, e);
    view.el.insertAdjacentHTML('afterbegin', `<p class="error" role="alert">${t('view_failed')}</p>`);
  }
}

/** Redraws the navigation and every mounted view in the current language. */
export function translateViews() {
  for (const a of $('views')?.querySelectorAll('a') ?? []) a.textContent = t(labelOf(a.dataset.view));
  for (const v of registry) if (v.mounted) v.translate?.(v.el);
}

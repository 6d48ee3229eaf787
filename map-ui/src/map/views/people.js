// People and phones: the users of the caller's scope (admins create, edit, deactivate them and
// set their role and territory scope), each rep's phones (enrolment link and QR codes,
// deactivate, reactivate, new secrets) and a rep's privacy settings (home, working hours).
// Managers see the users of their scope and manage their reps' phones; admins everything.
import { t, register } from '../../common/i18n.js';
import { esc } from '../../common/text.js';
import { registerView } from '../views.js';
import { api, ctx as shared } from '../context.js';
import { field, intervalsText, parseWeek, showErrors, WEEKDAYS } from './form.js';
import { PEOPLE_STRINGS } from './people.strings.js';

register(PEOPLE_STRINGS);

const ROLES = ['rep', 'manager', 'supervisor', 'auditor', 'admin'];
const view = { el: null, users: [], devices: [], territories: [], filter: '', selected: null };
/** What the browser test reads: the last enrolment shown and the users and devices listed. */
globalThis.fieldvisitPeople = view;

const isAdmin = (ctx) => ctx.me?.user?.role === 'admin';

async function load() {
  const [users, devices, territories] = await Promise.all([
    api.all('/users'),
    api.all('/devices').catch(() => []),
    api.all('/territories').catch(() => []),
  ]);
  Object.assign(view, { users, devices, territories });
}

/** The users matching the filter (login, name or role contains it), reps first, then by name. */
export function matching(users, filter) {
  const f = String(filter ?? '').trim().toLowerCase();
  return users
    .filter((u) => !f || [u.login, u.name, u.role].some((s) => String(s).toLowerCase().includes(f)))
    .sort((a, b) => (a.role === 'rep' ? 0 : 1) - (b.role === 'rep' ? 0 : 1) || a.name.localeCompare(b.name));
}

function territoryName(id) {
  if (id == null) return t('whole_org');
  const tr = view.territories.find((x) => x.id === id);
  return tr ? `${tr.name} (${tr.code})` : `#${id}`;
}

function territoryOptions(selected) {
  return [`<option value="">${esc(t('whole_org'))}</option>`,
    ...view.territories.map((tr) => `<option value="${tr.id}" ${tr.id === selected ? 'selected' : ''}>${esc(tr.name)} (${esc(tr.code)})</option>`)].join('');
}

function draw(ctx) {
  const admin = isAdmin(ctx);
  const rows = matching(view.users, view.filter).map((u) => `
    <tr data-user="${u.id}" data-testid="user-${esc(u.login)}" class="${u.active ? '' : 'inactive'}">
      <td>${esc(u.name)}<br><small>${esc(u.login)}</small></td><td>${esc(t(`role_${u.role}`))}</td>
      <td>${esc(territoryName(u.territory_id))}</td><td>${u.active ? esc(t('active')) : esc(t('inactive'))}</td>
      <td>${u.role === 'rep' ? `${view.devices.filter((d) => d.rep_id === u.id && d.active).length}` : ''}</td>
      <td><button type="button" data-open="${u.id}">${esc(t('open'))}</button></td></tr>`).join('');
  view.el.innerHTML = `
    <h1>${esc(t('view_people'))}</h1>
    <label class="field"><span>${esc(t('search'))}</span><input id="people-filter" type="search" value="${esc(view.filter)}"></label>
    ${admin ? `<details id="new-user"><summary>${esc(t('new_user'))}</summary>
      <form id="new-user-form" data-testid="new-user-form">
        ${field({ name: 'login', label: 'login', attrs: 'required maxlength="128"' })}
        ${field({ name: 'name', label: 'name', attrs: 'required' })}
        <label class="field"><span>${esc(t('role'))}</span><select name="role">${ROLES.map((r) => `<option value="${r}">${esc(t(`role_${r}`))}</option>`).join('')}</select></label>
        <label class="field"><span>${esc(t('territory'))}</span><select name="territory_id">${territoryOptions(null)}</select>
          <small class="field-error" data-error-for="territory_id"></small></label>
        <button type="submit">${esc(t('create'))}</button>
        <p class="field-error" data-error-for="" role="alert"></p>
        <p class="secret" data-testid="new-user-token" hidden></p>
      </form></details>` : ''}
    <table data-testid="users"><thead><tr><th>${esc(t('name'))}</th><th>${esc(t('role'))}</th><th>${esc(t('territory'))}</th>
      <th>${esc(t('status'))}</th><th>${esc(t('phones'))}</th><th></th></tr></thead><tbody>${rows}</tbody></table>
    <section id="person" data-testid="person" hidden></section>`;
  view.el.querySelector('#people-filter').addEventListener('input', (e) => {
    view.filter = e.target.value;
    const pos = e.target.selectionStart;
    draw(ctx);
    const input = view.el.querySelector('#people-filter');
    input.focus();
    input.setSelectionRange(pos, pos);
  });
  view.el.querySelector('#new-user-form')?.addEventListener('submit', (e) => createUser(e, ctx));
  for (const b of view.el.querySelectorAll('[data-open]')) b.addEventListener('click', () => openPerson(Number(b.dataset.open), ctx));
  if (view.selected) openPerson(view.selected, ctx);
}

async function createUser(e, ctx) {
  e.preventDefault();
  const form = e.target;
  const data = new FormData(form);
  showErrors(form, null);
  try {
    const body = { login: data.get('login'), name: data.get('name'), role: data.get('role') };
    if (data.get('territory_id')) body.territory_id = Number(data.get('territory_id'));
    const issued = await api.request('/users', { method: 'POST', json: body });
    await load();
    view.selected = issued.user.id;
    draw(ctx);
    const out = view.el.querySelector('[data-testid=new-user-token]');
    out.hidden = false;
    out.textContent = `${t('token_once')}: ${issued.token}`;
    view.el.querySelector('#new-user').open = true;
  } catch (err) {
    showErrors(form, err);
  }
}

async function openPerson(id, ctx) {
  view.selected = id;
  const u = view.users.find((x) => x.id === id);
  const box = view.el.querySelector('#person');
  if (!u) { box.hidden = true; return; }
  const admin = isAdmin(ctx);
  const phones = view.devices.filter((d) => d.rep_id === id);
  box.hidden = false;
  box.innerHTML = `
    <h2>${esc(u.name)} <small>${esc(u.login)}</small></h2>
    ${admin ? `<form id="edit-user" data-testid="edit-user">
      ${field({ name: 'name', label: 'name', value: u.name })}
      <label class="field"><span>${esc(t('role'))}</span><select name="role">${ROLES.map((r) => `<option value="${r}" ${r === u.role ? 'selected' : ''}>${esc(t(`role_${r}`))}</option>`).join('')}</select>
        <small class="field-error" data-error-for="role"></small></label>
      <label class="field"><span>${esc(t('territory'))}</span><select name="territory_id">${territoryOptions(u.territory_id)}</select>
        <small class="field-error" data-error-for="territory_id"></small></label>
      <label class="check"><input type="checkbox" name="active" ${u.active ? 'checked' : ''}> ${esc(t('active'))}</label>
      <small class="field-error" data-error-for="active"></small>
      <button type="submit">${esc(t('save'))}</button> <button type="button" id="reissue">${esc(t('new_token'))}</button>
      <p class="field-error" data-error-for="" role="alert"></p><p class="secret" data-testid="user-token" hidden></p>
    </form>` : `<p>${esc(t(`role_${u.role}`))} · ${esc(territoryName(u.territory_id))}</p>`}
    ${u.role === 'rep' ? `<h3>${esc(t('phones'))}</h3>
      <table data-testid="phones"><tbody>${phones.map((d) => `
        <tr data-device="${d.id}" data-active="${d.active}"><td>${esc(d.name)}</td>
          <td>${d.active ? esc(t('active')) : esc(t('inactive'))}${d.successor_id ? ` → #${d.successor_id}` : ''}</td>
          <td>${d.successor_id ? '' : `${d.active ? `<button type="button" data-enrol="${d.id}">${esc(t('enrol'))}</button>
            <button type="button" data-rotate="${d.id}">${esc(t('rotate'))}</button>` : ''}
            <button type="button" data-active-to="${!d.active}" data-device-id="${d.id}">${esc(t(d.active ? 'deactivate' : 'reactivate'))}</button>`}</td></tr>`).join('')}</tbody></table>
      <form id="new-phone" data-testid="new-phone">${field({ name: 'name', label: 'phone_name', value: `${u.login}-phone`, attrs: 'required' })}
        <button type="submit">${esc(t('add_phone'))}</button><p class="field-error" data-error-for="" role="alert"></p></form>
      <div id="enrolment" data-testid="enrolment" hidden></div>
      ${admin ? `<h3>${esc(t('privacy'))}</h3><form id="privacy" data-testid="privacy"><p>${esc(t('loading'))}</p></form>` : ''}` : ''}`;
  box.querySelector('#edit-user')?.addEventListener('submit', (e) => saveUser(e, u, ctx));
  box.querySelector('#reissue')?.addEventListener('click', () => reissue(u, box));
  box.querySelector('#new-phone')?.addEventListener('submit', (e) => addPhone(e, u, ctx));
  for (const b of box.querySelectorAll('[data-enrol]')) b.addEventListener('click', () => enrol(Number(b.dataset.enrol), box));
  for (const b of box.querySelectorAll('[data-rotate]')) b.addEventListener('click', () => rotate(Number(b.dataset.rotate), box));
  for (const b of box.querySelectorAll('[data-active-to]')) {
    b.addEventListener('click', () => setPhoneActive(Number(b.dataset.deviceId), b.dataset.activeTo === 'true', ctx));
  }
  if (admin && u.role === 'rep') loadPrivacy(u, box.querySelector('#privacy'));
}

async function saveUser(e, u, ctx) {
  e.preventDefault();
  const form = e.target;
  const data = new FormData(form);
  showErrors(form, null);
  const body = {};
  if (data.get('name') !== u.name) body.name = data.get('name');
  if (data.get('role') !== u.role) body.role = data.get('role');
  const territory = data.get('territory_id') ? Number(data.get('territory_id')) : null;
  if (territory !== u.territory_id) body.territory_id = territory;
  const active = data.get('active') === 'on';
  if (active !== u.active) body.active = active;
  try {
    await api.request(`/users/${u.id}`, { method: 'PATCH', json: body });
    await load();
    draw(ctx);
  } catch (err) {
    showErrors(form, err);
  }
}

async function reissue(u, box) {
  const form = box.querySelector('#edit-user');
  try {
    const { token } = await api.request(`/users/${u.id}/token`, { method: 'POST' });
    const out = box.querySelector('[data-testid=user-token]');
    out.hidden = false;
    out.textContent = `${t('token_once')}: ${token}`;
  } catch (err) {
    showErrors(form, err);
  }
}

async function addPhone(e, u, ctx) {
  e.preventDefault();
  const form = e.target;
  showErrors(form, null);
  try {
    const created = await api.request('/devices', { method: 'POST', json: { rep_id: u.id, name: new FormData(form).get('name') } });
    await load();
    draw(ctx);
    await enrol(created.device_id, view.el.querySelector('#person'));
  } catch (err) {
    showErrors(form, err);
  }
}

/** A one-time link to the reps' app (and the tracker apps' settings) as QR codes. */
async function enrol(deviceId, box) {
  const out = box.querySelector('#enrolment');
  out.hidden = false;
  try {
    const en = await api.request(`/devices/${deviceId}/enrolments`, { method: 'POST', json: { trackers: true } });
    view.enrolment = en;
    const qr = (label, q) => (q ? `<figure><img src="${esc(q.png)}" alt="${esc(t(label))}" width="180" height="180">
      <figcaption>${esc(t(label))}<br><code>${esc(q.text)}</code></figcaption></figure>` : '');
    out.innerHTML = `<h3>${esc(t('enrolment'))}</h3><p>${esc(t('enrolment_once'))} ${esc(new Date(en.expires_at).toLocaleString())}</p>
      <div class="qrs">${qr('qr_app', en.app)}${qr('qr_owntracks', en.owntracks)}${qr('qr_traccar', en.traccar?.qr)}</div>
      <p class="notice">${esc(t('background_note'))}</p>`;
  } catch (err) {
    out.innerHTML = `<p class="error" role="alert">${esc(err.detail || err.message)}</p>`;
  }
}

async function rotate(deviceId, box) {
  const out = box.querySelector('#enrolment');
  out.hidden = false;
  try {
    await api.request(`/devices/${deviceId}/credentials`, { method: 'POST', json: {} });
    out.innerHTML = `<p role="status">${esc(t('rotated'))}</p>`;
  } catch (err) {
    out.innerHTML = `<p class="error" role="alert">${esc(err.detail || err.message)}</p>`;
  }
}

async function setPhoneActive(deviceId, active, ctx) {
  try {
    await api.request(`/devices/${deviceId}`, { method: 'PATCH', json: { active } });
  } catch (err) {
    view.el.querySelector('#enrolment').textContent = err.detail || err.message;
    return;
  }
  await load();
  draw(ctx);
}

async function loadPrivacy(u, form) {
  let privacy;
  try {
    privacy = await api.request(`/users/${u.id}/privacy`);
  } catch (err) {
    form.innerHTML = `<p class="error">${esc(err.detail || err.message)}</p>`;
    return;
  }
  const hours = privacy.working_hours ?? {};
  form.innerHTML = `
    ${field({ name: 'home_lat', label: 'home_lat', type: 'number', value: privacy.home?.lat ?? '', attrs: 'step="any" min="-90" max="90"' })}
    ${field({ name: 'home_lon', label: 'home_lon', type: 'number', value: privacy.home?.lon ?? '', attrs: 'step="any" min="-180" max="180"' })}
    ${field({ name: 'home_radius_m', label: 'home_radius', type: 'number', value: privacy.home_radius_m ?? '', attrs: 'min="50" max="5000"' })}
    <fieldset><legend>${esc(t('own_hours'))}</legend><small>${esc(t('hours_hint'))}</small>
      <small class="field-error" data-error-for="working_hours"></small>
      ${WEEKDAYS.map((d) => field({ name: `wh_${d}`, label: `day_${d}`, value: intervalsText(hours[d]), attrs: 'placeholder="09:00-18:00"' })).join('')}</fieldset>
    <button type="submit">${esc(t('save'))}</button><p class="field-error" data-error-for="" role="alert"></p>
    <p role="status" data-testid="privacy-saved"></p>`;
  form.onsubmit = async (e) => {
    e.preventDefault();
    showErrors(form, null);
    const data = new FormData(form);
    const week = parseWeek(Object.fromEntries(WEEKDAYS.map((d) => [d, data.get(`wh_${d}`)])));
    if (week.errors) {
      for (const [d, reason] of Object.entries(week.errors)) form.querySelector(`[data-error-for=wh_${d}]`).textContent = reason;
      return;
    }
    const num = (k) => (data.get(k) === '' ? null : Number(data.get(k)));
    const body = {
      home: num('home_lat') == null || num('home_lon') == null ? null : { lat: num('home_lat'), lon: num('home_lon') },
      home_radius_m: num('home_radius_m'),
      working_hours: Object.keys(week.hours).length ? week.hours : null,
    };
    try {
      await api.request(`/users/${u.id}/privacy`, { method: 'PUT', json: body });
      form.querySelector('[data-testid=privacy-saved]').textContent = t('saved');
    } catch (err) {
      showErrors(form, err);
    }
  };
}

registerView({
  id: 'people',
  label: 'view_people',
  roles: ['admin', 'manager'],
  mount(el) {
    view.el = el;
  },
  async show(el, ctx) {
    await load();
    draw(ctx);
  },
  translate() {
    if (view.el) draw(shared);
  },
});

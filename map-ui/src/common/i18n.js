// Every visible string in English and Chinese: each app registers its own tables (beside the shared
// ones in strings.js) and reads them with `t(key)`; the language is the stored choice, else the
// browser's, and a header button switches it.
import { SHARED_STRINGS } from './strings.js';

export const LANGUAGES = ['en', 'zh'];
const tables = { en: {}, zh: {} };
let lang = 'en';

/** Adds `{ en: {...}, zh: {...} }` to the tables (a later table wins for a key in both). */
export function register(strings) {
  for (const l of LANGUAGES) Object.assign(tables[l], strings[l]);
}
register(SHARED_STRINGS);

/** The string of `key` in the current language (the key itself when there is none). */
export function t(key) { return tables[lang][key] ?? key; }

/** The stored choice when it is a language we have, else Chinese for a Chinese browser, else English. */
export function detectLanguage(stored, browserLanguage) {
  if (LANGUAGES.includes(stored)) return stored;
  return (browserLanguage || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

export function language() { return lang; }
export function setLanguage(l) { lang = LANGUAGES.includes(l) ? l : 'en'; }

/** The locale used to format dates and numbers in the current language. */
export function locale(l = lang) { return l === 'zh' ? 'zh-CN' : 'en-GB'; }

/** Picks the language from `storage` (under `key`) or the browser. */
export function initLanguage({ storage = globalThis.sessionStorage, key = 'fv.lang' } = {}) {
  setLanguage(detectLanguage(storage?.getItem(key), globalThis.navigator?.language));
  return lang;
}

/** Puts the page in the current language: `lang`, and the text of every `[data-i18n]` element. */
export function translatePage(doc = document) {
  doc.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  doc.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
}

/**
 * Makes `button` the language switch: it names the other language, stores the choice and
 * retranslates the page, then calls `onChange` for what the app draws itself.
 */
export function languageSwitch(button, { storage = globalThis.sessionStorage, key = 'fv.lang', onChange = () => {} } = {}) {
  const label = () => {
    button.textContent = lang === 'zh' ? 'English' : '中文';
    button.setAttribute('aria-label', t('language'));
  };
  const apply = () => { translatePage(button.ownerDocument); label(); onChange(); };
  button.addEventListener('click', () => {
    setLanguage(lang === 'zh' ? 'en' : 'zh');
    storage?.setItem(key, lang);
    apply();
  });
  return apply;
}

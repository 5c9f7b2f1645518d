// Every string the user reads goes through the browser's i18n (extension/_locales): the UI
// follows the browser's language, English where a language has no translation.

function i18n() {
  return (globalThis.browser ?? globalThis.chrome)?.i18n;
}

/** The message `key` with its $1…$9 substitutions filled in (the key itself if unknown). */
export function t(key, ...substitutions) {
  const text = i18n()?.getMessage?.(key, substitutions.map(String));
  return text || key;
}

/** The browser's UI language as a BCP 47 tag (en, zh-CN, …). */
export function uiLanguage() {
  return (i18n()?.getUILanguage?.() || globalThis.navigator?.language || 'en').replace(/_/g, '-');
}

/**
 * Fills a page's static text: data-i18n (text), data-i18n-placeholder, -title and -aria-label
 * name message keys. Sets <html lang> and dir to the UI's.
 */
export function localize(root = document) {
  for (const node of root.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const attr of ['placeholder', 'title', 'aria-label']) {
    const key = `i18n${attr.replace(/(^|-)([a-z])/g, (_, __, c) => c.toUpperCase())}`;
    for (const node of root.querySelectorAll(`[data-i18n-${attr}]`)) node.setAttribute(attr, t(node.dataset[key]));
  }
  const lang = uiLanguage();
  document.documentElement.lang = lang;
  document.documentElement.dir = t('@@bidi_dir') === 'rtl' ? 'rtl' : 'ltr';
}

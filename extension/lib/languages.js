// Languages offered for summaries, answers and translations, each named in itself (an
// endonym needs no translation).

export const LANGUAGES = Object.freeze([
  ['en', 'English'],
  ['zh-CN', '中文（简体）'],
  ['zh-TW', '中文（繁體）'],
  ['ja', '日本語'],
  ['ko', '한국어'],
  ['ru', 'Русский'],
  ['ar', 'العربية'],
  ['es', 'Español'],
  ['fr', 'Français'],
  ['de', 'Deutsch'],
  ['pt-BR', 'Português (Brasil)'],
  ['hi', 'हिन्दी'],
]);

export function languageName(tag) {
  return LANGUAGES.find(([code]) => code === tag)?.[1] ?? tag;
}

/** The offered language closest to a browser language tag (zh-Hans-CN → zh-CN, en-GB → en). */
export function closestLanguage(tag) {
  const lower = String(tag || 'en').toLowerCase();
  const exact = LANGUAGES.find(([code]) => code.toLowerCase() === lower);
  if (exact) return exact[0];
  if (lower.startsWith('zh')) return /tw|hk|hant/.test(lower) ? 'zh-TW' : 'zh-CN';
  const base = LANGUAGES.find(([code]) => code.split('-')[0] === lower.split('-')[0]);
  return base ? base[0] : 'en';
}

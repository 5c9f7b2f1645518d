// The few places Chromium, Opera and Firefox differ, behind one small surface.

import { t } from './i18n.js';

export const api = globalThis.browser ?? globalThis.chrome;

/** 'side_panel' (Chrome, Edge, Brave), 'opera' (opr.sidebarAction) or 'firefox' (sidebarAction). */
export function sidebarKind() {
  if (globalThis.opr?.sidebarAction) return 'opera';
  if (api.sidePanel) return 'side_panel';
  if (api.sidebarAction) return 'firefox';
  return 'none';
}

/**
 * Opens the sidebar for a tab where the browser allows it. Call it synchronously inside the
 * user's action (click, menu, shortcut): Chrome and Firefox refuse it afterwards. Opera has no
 * programmatic open; its panel picks up the answer when the user opens it.
 */
export function openSidebar(tab) {
  const kind = sidebarKind();
  try {
    if (kind === 'side_panel') return api.sidePanel.open({ tabId: tab.id }).then(() => true, () => false);
    if (kind === 'firefox') return api.sidebarAction.open().then(() => true, () => false);
  } catch {
    // no user gesture (e.g. a synthetic event): the panel stays as it is
  }
  return Promise.resolve(false);
}

/** A fallback window for browsers whose sidebar cannot be opened by the extension (Opera);
 *  like a sidebar it follows the active tab of the window it was opened from. */
export async function openPanelWindow(tab) {
  const url = api.runtime.getURL(`sidepanel/panel.html?windowId=${tab.windowId}`);
  await api.windows.create({ url, type: 'popup', width: 420, height: 720 });
}

/** The page functions cannot run on browser pages and extension galleries. */
export function pageAccessError(error) {
  const text = String(error?.message ?? error);
  if (/Cannot access|cannot be scripted|chrome:\/\/|extensions gallery|Missing host permission|about:/i.test(text)) {
    return t('pageOffLimits');
  }
  if (/No tab with id|Frame with ID/i.test(text)) return t('tabGone');
  return t('pageNotRead', text);
}

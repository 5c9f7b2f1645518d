// Which tab the panel shows, and when that tab shows another page. A sidebar (and a panel
// window opened with ?windowId=W) follows the active tab of its window; a panel opened with
// ?tabId=N stays on tab N. Either way the tab's address is watched: a navigation, including a
// single-page app's history.pushState (the browser reports it as a URL change of the tab),
// calls `onNavigate` so the panel can say the next question reads the new page.

/** The address without its fragment: a jump to #section is still the same page. */
export function pageAddress(url) {
  return String(url ?? '').split('#')[0];
}

export function isOtherPage(url, shownUrl) {
  return Boolean(url && shownUrl) && pageAddress(url) !== pageAddress(shownUrl);
}

export class TabFollower {
  /**
   * `api`: the browser's tabs and windows; `params`: the panel's URL parameters;
   * `onTab(tabId)` when the panel should show another tab; `onNavigate(tabId, url)` when the
   * shown tab's address changed.
   */
  constructor({ api, params, onTab, onNavigate }) {
    Object.assign(this, { api, onTab, onNavigate });
    this.fixedTab = params.has('tabId') ? Number(params.get('tabId')) : null;
    this.windowId = params.has('windowId') ? Number(params.get('windowId')) : null;
    this.tabId = this.fixedTab;
  }

  /** Resolves with the tab to show first, and starts listening. */
  async start() {
    this.api.tabs.onUpdated.addListener((id, change) => {
      if (id === this.tabId && change.url) this.onNavigate(id, change.url);
    });
    if (this.fixedTab !== null) return this.tabId;
    this.windowId ??= (await this.api.windows.getCurrent()).id;
    const [tab] = await this.api.tabs.query({ active: true, windowId: this.windowId });
    this.tabId = tab?.id ?? null;
    this.api.tabs.onActivated.addListener(({ tabId, windowId }) => {
      if (windowId !== this.windowId || tabId === this.tabId) return;
      this.tabId = tabId;
      this.onTab(tabId);
    });
    return this.tabId;
  }

  /** The shown tab's address now ('' when it cannot be read: closed, or a browser page). */
  async currentUrl() {
    if (this.tabId === null) return '';
    try {
      return (await this.api.tabs.get(this.tabId)).url ?? '';
    } catch {
      return '';
    }
  }
}

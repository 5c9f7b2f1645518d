// The panel's list of the user's own actions (lib/actions.js): one button each, in the user's
// order, drawn again whenever the options page changes them. A click asks the worker to run
// that action on the panel's tab (`run-action`); the answer comes back like any other.

import { STORAGE_KEY, loadActions } from '../lib/actions.js';
import { t } from '../lib/i18n.js';

export class ActionList {
  /** `run(actionId)`: sends the op; `storage`: storage.local; `onChanged`: storage.onChanged. */
  constructor({ root, storage, onChanged, run }) {
    this.root = root;
    this.storage = storage;
    this.run = run;
    this.promptChars = Infinity; // until the worker's attach reply gives the schema's limit
    onChanged.addListener((changes, area) => {
      if (area === 'local' && changes[STORAGE_KEY]) this.draw();
    });
    this.draw();
  }

  /** The limits of the attach reply (lib/limits.js via the worker). */
  setLimits({ instruction }) {
    if (instruction) this.promptChars = instruction;
    this.draw();
  }

  async draw() {
    const actions = await loadActions(this.storage, { promptChars: this.promptChars });
    const buttons = actions.map((action) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'action-run';
      button.textContent = action.name;
      button.title = action.prompt;
      button.dataset.testid = 'action-run';
      button.dataset.actionName = action.name;
      button.dataset.target = action.target;
      button.setAttribute('aria-label', `${action.name} (${t(action.target === 'page' ? 'targetPage' : 'targetSelection')})`);
      button.addEventListener('click', () => this.run(action.id));
      return button;
    });
    this.root.replaceChildren(...buttons);
    this.root.hidden = !buttons.length;
  }
}

// The size limits the extension keeps to, read from the protocol schema it loads (the same
// files the service validates against), so no limit is written down a second time here.
// Frame sizes are the schema's defaults until a welcome gives the service's own.

/** A number the schema must state; a schema without it is a broken build, said plainly. */
function required(value, where) {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`the protocol schema gives no ${where}`);
  return value;
}

/** Limits from `schemas` (what loadSchemas returns); frozen. */
export function readLimits({ client, server }) {
  const defs = client.$defs;
  const page = defs.page.properties;
  const rewrite = defs.rewrite.properties;
  const frames = server.$defs.welcome.properties.limits.properties;
  return Object.freeze({
    // Bytes of a whole frame: pages (summarize, ask) and every other frame.
    page_frame_bytes: required(frames.page_frame_bytes.default, 'welcome.limits.page_frame_bytes default'),
    frame_bytes: required(frames.frame_bytes.default, 'welcome.limits.frame_bytes default'),
    // Characters of one field.
    url: required(page.url.maxLength, 'page.url maxLength'),
    title: required(page.title.maxLength, 'page.title maxLength'),
    selection: required(page.selection.maxLength, 'page.selection maxLength'),
    pdf: required(page.pdf.maxLength, 'page.pdf maxLength'),
    cues: required(page.transcript.properties.cues.maxItems, 'page.transcript.cues maxItems'),
    cueText: required(page.transcript.properties.cues.items.properties.text.maxLength, 'page.transcript cue text maxLength'),
    question: required(defs.ask.properties.question.maxLength, 'ask.question maxLength'),
    rewriteText: required(rewrite.text.maxLength, 'rewrite.text maxLength'),
    rewriteContext: required(rewrite.context.maxLength, 'rewrite.context maxLength'),
    // A user's own action: its filled prompt goes as rewrite.options.instruction (selection)
    // or as ask.question (page); the smaller limit holds for both.
    instruction: required(rewrite.options.properties.instruction.maxLength, 'rewrite.options.instruction maxLength'),
    // How many tabs one request may read together.
    minTabs: required(defs.pages.minItems, 'pages minItems'),
    maxTabs: required(defs.pages.maxItems, 'pages maxItems'),
  });
}

/** Frame-size limits: the schema's defaults, then whatever a welcome said. */
export function frameLimits(limits, welcomeLimits = {}) {
  return { page_frame_bytes: limits.page_frame_bytes, frame_bytes: limits.frame_bytes, ...welcomeLimits };
}

// SPDX-License-Identifier: Apache-2.0
// Flame graphs as SVG, from folded stacks ("root;caller;leaf WEIGHT"), the
// format Brendan Gregg's flamegraph.pl reads. Drawn with DOM calls only
// (createElementNS + textContent), so a frame name can never become markup.
"use strict";

const AnoleFlame = (() => {
  const SVGNS = "http://www.w3.org/2000/svg";

  // The records of `anole diag profile|offcputime --json` as folded lines:
  // the root is the command, then the user stack outermost first, then the
  // kernel stack (the tools list both leaf first, so they are reversed).
  function foldRecords(records) {
    const weights = new Map();
    for (const r of records) {
      if (typeof r === "string") { addFoldedLine(weights, r); continue; }
      if (!r || typeof r !== "object") continue;
      if (typeof r.folded === "string") { addFoldedLine(weights, r.folded + " " + (r.count || 1)); continue; }
      if (!Array.isArray(r.kernel_stack) && !Array.isArray(r.user_stack)) continue;
      const w = Number(r.usecs ?? r.count ?? r.value ?? 1);
      if (!(w > 0)) continue;
      const frames = [String(r.comm ?? "?")];
      if (Array.isArray(r.user_stack)) frames.push(...r.user_stack.slice().reverse().map(String));
      if (r.user_stack_missing) frames.push("[missing user stack]");
      if (Array.isArray(r.kernel_stack)) frames.push(...r.kernel_stack.slice().reverse().map(String));
      if (r.kernel_stack_missing) frames.push("[missing kernel stack]");
      const key = frames.map(f => f.replace(/;/g, ":")).join(";");
      weights.set(key, (weights.get(key) || 0) + w);
    }
    return weights;
  }

  function addFoldedLine(weights, line) {
    const m = /^(.*)\s+(\d+(?:\.\d+)?)\s*$/.exec(line);
    if (!m) return;
    weights.set(m[1], (weights.get(m[1]) || 0) + Number(m[2]));
  }

  function buildTree(weights) {
    const root = { name: "all", value: 0, children: new Map() };
    for (const [stack, w] of weights) {
      root.value += w;
      let node = root;
      for (const f of stack.split(";")) {
        let c = node.children.get(f);
        if (!c) { c = { name: f, value: 0, children: new Map(), parent: node }; node.children.set(f, c); }
        c.value += w;
        node = c;
      }
    }
    return root;
  }

  function depthOf(node) {
    let d = 0;
    for (const c of node.children.values()) d = Math.max(d, depthOf(c));
    return d + 1;
  }

  // A stable warm colour per name, as flamegraph.pl does, so the same
  // function has the same colour across redraws.
  function colour(name) {
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    const r = 205 + (h % 50), g = 80 + ((h >>> 8) % 130), b = 40 + ((h >>> 16) % 50);
    return `rgb(${r},${g},${b})`;
  }

  // render(container, records, {unit}): draws into container, returns the
  // number of distinct stacks. Click a frame to zoom in; click "all" to reset.
  function render(container, records, opts = {}) {
    const weights = foldRecords(records);
    const tree = buildTree(weights);
    const unit = opts.unit || "samples";
    container.replaceChildren();
    if (tree.value === 0) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "No stacks were recorded.";
      container.append(p);
      return 0;
    }
    const rowH = 17, width = Math.max(600, container.clientWidth || 1000);
    const draw = (zoom) => {
      const depth = depthOf(zoom) + ancestors(zoom).length;
      const svg = document.createElementNS(SVGNS, "svg");
      svg.setAttribute("class", "flame");
      svg.setAttribute("width", String(width));
      svg.setAttribute("height", String(depth * rowH + 4));
      svg.setAttribute("viewBox", `0 0 ${width} ${depth * rowH + 4}`);
      const total = zoom.value;
      let frames = 0;
      // The zoomed frame's ancestors span the full width, below it.
      const chain = ancestors(zoom).reverse();
      const place = (node, x, level, w) => {
        if (w < 0.5) return;
        frames++;
        const y = (depth - level - 1) * rowH;
        const g = document.createElementNS(SVGNS, "g");
        const title = document.createElementNS(SVGNS, "title");
        const pct = (100 * node.value / tree.value).toFixed(2);
        title.textContent = `${node.name} (${node.value} ${unit}, ${pct}%)`;
        const rect = document.createElementNS(SVGNS, "rect");
        rect.setAttribute("x", x.toFixed(2));
        rect.setAttribute("y", String(y));
        rect.setAttribute("width", Math.max(0, w - 0.5).toFixed(2));
        rect.setAttribute("height", String(rowH - 1));
        rect.setAttribute("fill", node === tree ? "rgb(230,120,80)" : colour(node.name));
        rect.dataset.frame = node.name;
        g.append(title, rect);
        if (w > 30) {
          const text = document.createElementNS(SVGNS, "text");
          text.setAttribute("x", (x + 3).toFixed(2));
          text.setAttribute("y", String(y + rowH - 5));
          const fit = Math.floor((w - 6) / 6.6);
          text.textContent = node.name.length > fit ? node.name.slice(0, Math.max(0, fit - 2)) + ".." : node.name;
          g.append(text);
        }
        g.addEventListener("click", () => draw(node === zoom && node.parent ? node.parent : node));
        svg.append(g);
        return true;
      };
      chain.forEach((a, i) => place(a, 0, i, width));
      const walk = (node, x, level) => {
        place(node, x, level, width * node.value / total);
        let cx = x;
        const kids = [...node.children.values()].sort((a, b) => a.name < b.name ? -1 : 1);
        for (const c of kids) {
          walk(c, cx, level + 1);
          cx += width * c.value / total;
        }
      };
      walk(zoom, 0, chain.length);
      container.replaceChildren(svg);
      return frames;
    };
    draw(tree);
    return weights.size;
  }

  function ancestors(node) {
    const out = [];
    for (let p = node.parent; p; p = p.parent) out.push(p);
    return out;
  }

  return { render, foldRecords, buildTree };
})();

// Draws the corridor's statistics (/dashboard/stats.json) with the bundled Chart.js.
(async function () {
  Chart.defaults.animation = false;  // drawn at once: screenshots and slow machines alike
  Chart.defaults.maintainAspectRatio = false;
  const M = (x) => Math.round(x / 1e4) / 100;  // CNY → millions, 2 decimals
  const colours = ["#2f6fb3", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"];
  const res = await fetch("/dashboard/stats.json", { credentials: "same-origin" });
  if (!res.ok) { document.getElementById("scope").textContent = "could not load: " + res.status; return; }
  const s = await res.json();
  document.getElementById("scope").textContent =
    `scope: ${s.scope} · generated ${s.generated_at.replace("T", " ").slice(0, 19)} UTC`;
  const t = s.totals;
  const tiles = [
    ["needs posted", t.needs], ["requested, CNY m", M(t.requested_cny)], ["proposals", t.proposals],
    ["agreed", t.agreed], ["reserved", t.reserved], ["closed", t.closed],
    ["funded, CNY m", M(t.funded_cny)],
    ["no eligible offer", `${s.no_eligible_offer} (${Math.round(s.no_eligible_share * 100)}%)`],
    ["to 1st proposal, median h", s.to_first_proposal.median_hours ?? "–"],
    ["to close, median h", s.to_close.median_hours ?? "–"],
  ];
  document.getElementById("tiles").innerHTML = tiles
    .map(([k, v]) => `<div class="tile"><b>${v}</b>${k}</div>`).join("");
  const bars = (id, labels, sets, options = {}) => new Chart(document.getElementById(id), {
    type: "bar",
    data: { labels, datasets: sets.map((d, i) => ({ backgroundColor: colours[i], ...d })) },
    options,
  });
  bars("by-city", s.by_city.map((r) => r.key), [
    { label: "requested", data: s.by_city.map((r) => M(r.requested_cny)) },
    { label: "matched", data: s.by_city.map((r) => M(r.matched_cny)) },
    { label: "funded", data: s.by_city.map((r) => M(r.funded_cny)) },
  ]);
  bars("by-instrument", s.by_instrument.map((r) => r.key), [
    { label: "matched", data: s.by_instrument.map((r) => M(r.matched_cny)) },
    { label: "funded", data: s.by_instrument.map((r) => M(r.funded_cny)) },
  ]);
  bars("funnel", ["needs", "proposals", "agreed", "reserved", "closed"], [
    { label: "count", data: [t.needs, t.proposals, t.agreed, t.reserved, t.closed] },
  ]);
  bars("why-not", s.why_not.map((r) => r.rule), [
    { label: "needs refused by the rule", data: s.why_not.map((r) => r.needs) },
  ], { indexAxis: "y" });
  // shares, not amounts: the G60 fund's 10 bn would flatten every bank product beside it
  bars("capacity", s.capacity.map((c) => c.name), [
    { label: "% of capacity used", data: s.capacity.map((c) => Math.round(c.used_share * 1000) / 10) },
  ], { scales: { y: { min: 0, max: 100 } } });
  document.body.dataset.ready = "1";
})();

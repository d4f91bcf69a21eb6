// Runs before first paint (a classic, blocking script) so the chosen theme never flashes.
(function () {
  try {
    var t = localStorage.getItem("orchestrion-theme");
    if (t === "dark" || t === "light") document.documentElement.dataset.theme = t;
  } catch (e) { /* storage may be disabled */ }
})();

// Call search: after a page or sort link swaps the results, move focus to them -- the link that had focus is
// gone, and keyboard and screen reader users would otherwise be left at the top of the document.
document.addEventListener("htmx:afterSwap", (event) => {
  const source = event.detail.requestConfig && event.detail.requestConfig.elt;
  if (!source || !source.hasAttribute || !source.hasAttribute("data-focus-results")) return;
  const results = document.getElementById("results");
  if (results) results.focus();
});

"""What a run leaves behind and shows: the journal, the run folder, the terminal summary, the HTML report
and its chart. Never imports targets, engines or the pipeline (`make lint` checks it)."""

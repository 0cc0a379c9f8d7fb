"""Only for the embedded demo: tiny assets, synthetic world, driver, report, baselines; the core never imports it."""

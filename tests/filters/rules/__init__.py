"""One test file per rule of filters/rules/, at the rule's declared defaults."""

package capture

// ReadESLCommand exposes readESLCommand to the fuzz test.
var ReadESLCommand = readESLCommand

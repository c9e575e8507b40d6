"""What every feature may use: page rendering, who is asking (guards), sessions, access
rules, audit, the WebSocket hub, labels. It imports no feature."""

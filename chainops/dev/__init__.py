"""inv dev's parts: the watcher, what it decides, and the Procfile runner."""

"""All of actorflow's Ray code: agent actors, the supervisor, breakers, retries, the runner."""

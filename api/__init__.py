"""rx-api: salt-api's REST and event API over rx's services (a tornado daemon)."""

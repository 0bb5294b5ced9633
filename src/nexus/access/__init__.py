"""Who may see and operate Nexus through the API and the dashboard: tokens with a role,
dashboard sessions, and the log of what each operator did."""

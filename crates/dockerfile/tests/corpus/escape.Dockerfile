# escape=`
FROM windows `
  AS win
RUN dir C:\ `
  && echo done
COPY C:\src\ `
  C:\dst\
